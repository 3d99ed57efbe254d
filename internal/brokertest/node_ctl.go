package brokertest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ctlTimeout bounds one rabbitmqctl call in the cluster helpers: a paused
// (SIGSTOP) or cut-off node never answers, and a poll must go on to the next
// node instead of hanging.
const ctlTimeout = 15 * time.Second

// ctlOut runs rabbitmqctl against the node and returns its standard output.
// The CLI is a script that starts an Erlang VM: on timeout the whole process
// group is killed, so no CLI VM outlives the call.
func (n *Node) ctlOut(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "rabbitmqctl", append([]string{"-n", n.Name, "-q"}, args...)...)
	cmd.Env = n.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("rabbitmqctl -n %s %s: %v: %s", n.Name, strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()+" "+string(out)))
	}
	return string(out), nil
}
