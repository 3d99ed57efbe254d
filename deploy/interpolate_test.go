package deploy

import (
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Compose interpolates ${NAME}, ${NAME:-default}, ${NAME-default},
// ${NAME:?error}, ${NAME?error} and $NAME in every value of the file, and
// $$ stands for $. The tests check the file twice: as written (rawCompose:
// no literal password), and as Docker runs it for someone who exported
// nothing (compose: the demo defaults), which is what the binaries see.

// interpolate expands s as compose would with the variables in env.
func interpolate(s string, env map[string]string) (string, error) {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' {
			out.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			out.WriteByte('$')
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("%q: unterminated ${ at byte %d", s, i)
			}
			v, err := expand(s[i+2:i+end], env)
			if err != nil {
				return "", fmt.Errorf("%q: %w", s, err)
			}
			out.WriteString(v)
			i += end
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || j > i+1 && s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == i+1 {
			return "", fmt.Errorf("%q: a lone $ at byte %d; write $$ for a literal $", s, i)
		}
		out.WriteString(env[s[i+1:j]])
		i = j - 1
	}
	return out.String(), nil
}

// expand is the inside of one ${…}.
func expand(expr string, env map[string]string) (string, error) {
	for _, op := range []string{":-", ":?", "-", "?"} {
		name, arg, ok := strings.Cut(expr, op)
		if !ok || name == "" || strings.ContainsAny(name, ":-?") {
			continue
		}
		v, set := env[name]
		unset := !set || (v == "" && op[0] == ':')
		switch {
		case !unset:
			return v, nil
		case op[len(op)-1] == '-':
			return arg, nil
		default:
			return "", fmt.Errorf("${%s} is required: %s", expr, arg)
		}
	}
	if strings.ContainsAny(expr, ":-?+") {
		return "", fmt.Errorf("${%s}: this test knows ${NAME}, ${NAME:-default} and ${NAME:?error} only", expr)
	}
	return env[expr], nil
}

// interpolateNode interpolates every scalar of a parsed file in place, each
// once: aliases share their anchor's nodes.
func interpolateNode(n *yaml.Node, env map[string]string, seen map[*yaml.Node]bool) error {
	if n == nil || seen[n] {
		return nil
	}
	seen[n] = true
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		v, err := interpolate(n.Value, env)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		n.Value = v
	}
	for _, c := range n.Content {
		if err := interpolateNode(c, env, seen); err != nil {
			return err
		}
	}
	return interpolateNode(n.Alias, env, seen)
}

func TestInterpolate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SET": "v", "EMPTY": ""}
	for in, want := range map[string]string{
		"plain":                     "plain",
		"a$$b":                      "a$b",
		"${SET}":                    "v",
		"$SET/x":                    "v/x",
		"${UNSET:-d e}":             "d e",
		"${EMPTY:-d}":               "d",
		"${EMPTY-d}":                "",
		"${SET:-d}":                 "v",
		"amqp://${U:-u}:${P:-p}@h/": "amqp://u:p@h/",
		`'^x\.unrouted$$'`:          `'^x\.unrouted$'`,
		"${SET:?must be set}":       "v",
		"$UNSET":                    "",
		"pre ${UNSET-} post":        "pre  post",
		"--password=\"$$PASS\"":     `--password="$PASS"`,
		"${SET}${UNSET:-x}$$${SET}": "vx$v",
	} {
		got, err := interpolate(in, env)
		if err != nil || got != want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${UNSET:?needed}", "a $ b", "${OPEN", "${X:+alt}"} {
		if got, err := interpolate(in, env); err == nil {
			t.Errorf("interpolate(%q) = %q, want an error", in, got)
		}
	}
}
