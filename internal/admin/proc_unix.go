//go:build unix

package admin

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// alive reports whether a process with pid exists (EPERM: it does, as
// another user's).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// checkDir refuses a runtime directory that another user could have made or
// can write: its records would steer health checks.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRuntimeDir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrRuntimeDir, dir)
	case ok && int(st.Uid) != os.Getuid():
		return fmt.Errorf("%w: %s belongs to uid %d, not to this user (%d)", ErrRuntimeDir, dir, st.Uid, os.Getuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%w: %s is writable by others (mode %v)", ErrRuntimeDir, dir, fi.Mode().Perm())
	}
	return nil
}
