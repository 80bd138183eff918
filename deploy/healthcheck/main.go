// Command greenroom-healthcheck is the HEALTHCHECK of the Greenroom images
// (which are FROM scratch: no shell, no curl). Built by
// scripts/build-images.sh with the standard library only.
//
//	greenroom-healthcheck            GET /readyz on every TCP port the container's
//	                                 main process (PID 1) listens on
//	greenroom-healthcheck PATH       the same with PATH
//	greenroom-healthcheck URL        GET URL (http://…)
//
// It exits 0 when an answer is 200, 1 otherwise. Finding the port in /proc
// is what lets a replica listen on a port of its own (GREENROOM_HTTP_ADDR
// 127.0.0.1:0, as docker-compose.yml sets for the services one scales with
// --scale) while sharing the host's network with its siblings.
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	target := "/readyz"
	if len(os.Args) > 1 {
		target = os.Args[1]
	}
	client := &http.Client{Timeout: 2 * time.Second}
	var urls []string
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		urls = []string{target}
	} else {
		addrs, err := listening(1)
		if err != nil {
			fail("finding the listening ports of pid 1: %v", err)
		}
		if len(addrs) == 0 {
			fail("pid 1 listens on no TCP port (yet)")
		}
		for _, a := range addrs {
			urls = append(urls, "http://"+a+target)
		}
	}
	var errs []string
	for _, u := range urls {
		resp, err := client.Get(u)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			fmt.Printf("%s: %d\n", u, resp.StatusCode)
			return
		}
		errs = append(errs, fmt.Sprintf("%s: %d", u, resp.StatusCode))
	}
	fail("%s", strings.Join(errs, "; "))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "greenroom-healthcheck: "+format+"\n", args...)
	os.Exit(1)
}

// listening returns host:port of every TCP socket in LISTEN state that
// process pid holds open (an unspecified address as loopback).
func listening(pid int) ([]string, error) {
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	fds, err := os.ReadDir(filepath.Join(proc, "fd"))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(proc, "fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(proc, "net", table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			if a, ok := address(fields[1]); ok {
				out = append(out, a)
			}
		}
		_ = f.Close()
	}
	return out, nil
}

// address decodes /proc/net/tcp's HEXIP:HEXPORT (the IP in host byte order
// per 32-bit word, little-endian here).
func address(s string) (string, bool) {
	ipHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return "", false
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return "", false
	}
	raw, err := hex.DecodeString(ipHex)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", false
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10)), true
}
