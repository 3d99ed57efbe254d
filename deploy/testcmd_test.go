package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README's second first-command is the test command; CI and `make test`
// must run exactly it, so what a newcomer runs is what CI proves green.
func TestTestCommandIsTheREADMEs(t *testing.T) {
	t.Parallel()
	read := func(name string) string {
		b, err := os.ReadFile("../" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	readme := read("README.md")
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(readme)
	if block == nil {
		t.Fatal("README.md has no ```sh block")
	}
	lines := strings.Split(strings.TrimSpace(block[1]), "\n")
	if len(lines) != 2 {
		t.Fatalf("README.md's first block has %d commands; want two (run the fleet, run the tests)", len(lines))
	}
	cmd := strings.TrimSpace(strings.SplitN(lines[1], "#", 2)[0])
	if !strings.Contains(cmd, "go test ") {
		t.Fatalf("README.md's second command is %q; want the test command", cmd)
	}
	if strings.Contains(cmd, "AMQP_URL") {
		t.Errorf("README.md's test command %q sets AMQP_URL: on a fresh machine it must work as written", cmd)
	}
	if ci := read(".ci/run"); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(cmd) + `$`).MatchString(ci) {
		t.Errorf(".ci/run does not run the README's test command %q on a line of its own", cmd)
	}
	if mk := read("Makefile"); !strings.Contains(mk, "\nTEST_CMD = "+cmd+"\n") {
		t.Errorf("Makefile's TEST_CMD is not the README's test command %q", cmd)
	}
}
