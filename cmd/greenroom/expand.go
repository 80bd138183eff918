package main

import (
	"fmt"
	"strings"
)

// Variables in apply files, as docker-compose writes them: in a string
// value, ${NAME} is the environment variable NAME, ${NAME:-default} its
// value or default when it is unset or empty, ${NAME-default} when it is
// unset, ${NAME:?message} and ${NAME?message} an error with message when it
// is unset or empty (unset); $$ is one $. (The CLI counts an empty
// variable as unset, so the forms with and without : agree there.) A lone $ not followed by { or $
// stays as it is, so `$request_host$` needs no escaping. Unlike compose, an
// unset ${NAME} without a default is an error, not an empty string: a
// password that silently became empty would lock its user out.

// expandVars returns s with its variables substituted: lookup gives a
// variable's value and whether it is set.
func expandVars(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("%q: ${ without a closing }", s)
			}
			v, err := expandOne(s[i+2:i+2+end], lookup)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// expandOne is the value of the expression between ${ and }.
func expandOne(expr string, lookup func(string) (string, bool)) (string, error) {
	name, op, arg := expr, "", ""
	if i := strings.IndexAny(expr, ":-?"); i >= 0 {
		name, op = expr[:i], expr[i:]
		switch {
		case strings.HasPrefix(op, ":-"), strings.HasPrefix(op, ":?"):
			op, arg = op[:2], op[2:]
		case strings.HasPrefix(op, "-"), strings.HasPrefix(op, "?"):
			op, arg = op[:1], op[1:]
		default:
			return "", fmt.Errorf("${%s}: not ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message} or ${NAME?message}", expr)
		}
	}
	if !validVarName(name) {
		return "", fmt.Errorf("${%s}: %q is not a variable name (letters, digits and _, not starting with a digit)", expr, name)
	}
	v, set := lookup(name)
	switch op {
	case "":
		if !set {
			return "", fmt.Errorf("${%s}: %s is not set (write ${%s:-} for an empty default)", expr, name, name)
		}
	case ":-":
		if v == "" {
			v = arg
		}
	case "-":
		if !set {
			v = arg
		}
	case ":?", "?":
		if !set || (op == ":?" && v == "") {
			if arg == "" {
				arg = "is not set"
			}
			return "", fmt.Errorf("${%s}: %s %s", expr, name, arg)
		}
	}
	return v, nil
}

func validVarName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// escapeVars is the inverse of expandVars for a literal string: it doubles
// each $ that expandVars would otherwise read (one followed by $ or {), so
// that what `get -o yaml` writes applies back to the same value.
func escapeVars(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		if s[i] == '$' && i+1 < len(s) && (s[i+1] == '$' || s[i+1] == '{') {
			b.WriteByte('$')
		}
	}
	return b.String()
}
