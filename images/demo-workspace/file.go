package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// runFile reads, writes or appends to a file inside the container, and
// runEnv prints the session's GREENROOM_* environment: what the process in
// the container sees, for the tests of the settings Greenroom applies (a
// persistent profile, volume mappings, SSH keys, the first_launch exec).
// The image is FROM scratch: there is no shell or cat to do it with.
// runEnv never prints the assign hook's secret, only that it is set.
func runFile(args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return usageError{"usage: file read PATH | file write PATH TEXT | file append PATH TEXT | file stat PATH"}
	}
	op, path := args[0], args[1]
	switch op {
	case "read":
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	case "stat":
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		uid, gid := owner(fi)
		fmt.Fprintf(stdout, "%s %d:%d\n", fi.Mode(), uid, gid)
		return nil
	case "write", "append":
		if len(args) != 3 {
			return usageError{"usage: file " + op + " PATH TEXT"}
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
		if op == "append" {
			flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
		}
		f, err := os.OpenFile(path, flags, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(f, args[2]+"\n"); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return usageError{fmt.Sprintf("unknown file operation %q", op)}
}

func runEnv(environ []string, stdout io.Writer) error {
	var lines []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GREENROOM_") || strings.HasPrefix(kv, "HOME=") {
			if k, v, _ := strings.Cut(kv, "="); k == "GREENROOM_ASSIGN_SECRET" && v != "" {
				kv = k + "=(set, not shown)"
			}
			lines = append(lines, kv)
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	fmt.Fprintf(stdout, "uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	if h, err := os.Hostname(); err == nil {
		fmt.Fprintf(stdout, "hostname=%s\n", h)
	}
	return nil
}
