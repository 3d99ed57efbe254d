package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Binaries that read the environment.
const (
	BinaryWorker    = "worker"
	BinaryPublisher = "publisher"
)

// Setting is one environment variable a binary reads and its default, as
// the README's table and the binary's help write it. Settings are made from
// what loading an empty environment yields, so they are the defaults in
// force, wherever they are defined.
type Setting struct {
	Var    string
	Binary string // BinaryWorker or BinaryPublisher
	// Defaults are the default written out ("16", "30s", "1m"); PUBLISH_TIMEOUT
	// has two (serve's, then publish's). None when unset means something
	// the docs put in words (APP_NAME: FLY_APP_NAME, else "app").
	Defaults []string
}

// Settings lists every variable the binaries read, by binary, in the order
// of their structs' fields.
func Settings() []Setting {
	w, errW := LoadWorker(map[string]string{})
	in, errI := LoadInspect(map[string]string{})
	p, errP := LoadPublisher(map[string]string{})
	if err := errors.Join(errW, errI, errP); err != nil {
		panic("config: the defaults do not load: " + err.Error())
	}
	var out []Setting
	add := func(binary string, v any) {
		for _, s := range settingsOf(binary, reflect.ValueOf(v)) {
			if !slices.ContainsFunc(out, func(o Setting) bool {
				return o.Var == s.Var && o.Binary == s.Binary && slices.Equal(o.Defaults, s.Defaults)
			}) {
				out = append(out, s)
			}
		}
	}
	add(BinaryWorker, w)
	add(BinaryWorker, in)
	add(BinaryPublisher, p)
	// The relay's own settings; DATABASE_URL, required, has no default to
	// load, so the defaults are taken as they are filled in.
	add(BinaryPublisher, defaultRelay())
	add(BinaryPublisher, defaultNATS())
	for i, s := range out {
		if s.Var == "PUBLISH_TIMEOUT" {
			out[i].Defaults = append(out[i].Defaults, FormatDuration(p.ProgressTimeout))
		}
	}
	return out
}

func settingsOf(binary string, v reflect.Value) []Setting {
	var out []Setting
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Anonymous {
			out = append(out, settingsOf(binary, v.Field(i))...)
			continue
		}
		name := f.Tag.Get("env")
		if name == "" || name == "-" {
			continue
		}
		s := Setting{Var: name, Binary: binary}
		if d := formatDefault(v.Field(i)); d != "" {
			s.Defaults = []string{d}
		}
		out = append(out, s)
	}
	return out
}

// formatDefault writes a loaded value as the docs do; "" for an empty
// string or list, whose meaning the docs put in words.
func formatDefault(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		if d == 0 {
			return "0"
		}
		return FormatDuration(d)
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Slice:
		return ""
	default:
		return fmt.Sprint(v.Interface())
	}
}

var helpEntry = regexp.MustCompile(`^  ([A-Z][A-Z0-9_]+)\s`)

// HelpProblems checks a binary's help text against Settings: every setting
// of binary with a default must have an entry (a line "  VAR  ...", and the
// indented lines after it) that writes each default as "[X]" or
// "(default X". It returns what is wrong, for the binaries' tests.
func HelpProblems(binary, help string) []string {
	entries := map[string]string{}
	var cur string
	for line := range strings.SplitSeq(help, "\n") {
		switch m := helpEntry.FindStringSubmatch(line); {
		case m != nil:
			cur = m[1]
			entries[cur] += line + "\n"
		case cur != "" && strings.HasPrefix(line, "   "):
			entries[cur] += line + "\n"
		default:
			cur = ""
		}
	}
	var problems []string
	for _, s := range Settings() {
		if s.Binary != binary || len(s.Defaults) == 0 {
			continue
		}
		entry, ok := entries[s.Var]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s has no entry (a line starting \"  %s \")", s.Var, s.Var))
			continue
		}
		for _, d := range s.Defaults {
			q := regexp.QuoteMeta(d)
			if !regexp.MustCompile(`\[` + q + `\]|\(default ` + q + `[);:,]`).MatchString(entry) {
				problems = append(problems, fmt.Sprintf("%s: the default %s is not written [%s] or (default %s) in:\n%s", s.Var, d, d, d, entry))
			}
		}
	}
	return problems
}
