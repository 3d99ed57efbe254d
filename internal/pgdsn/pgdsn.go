// Package pgdsn reads PostgreSQL connection strings, URLs or key=value DSNs:
// it hides their password for logs and errors, and names another database
// on the same server. It imports nothing of ours, so that internal/config,
// the test helpers of internal/pgtest (which packages under config test with)
// and the bench can use the one implementation.
package pgdsn

import (
	"net/url"
	"regexp"
	"strings"
)

var keyValuePassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact is dsn, a PostgreSQL URL or key=value DSN, with its password
// hidden: the URL's user password and a password query parameter, or a
// DSN's password=… (quoted or not).
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	dsn = keyValuePassword.ReplaceAllString(dsn, "${1}xxxxx")
	// A URL that url.Parse refuses (an unescaped '#' in the password, which
	// pgx accepts, a bad %-escape, a space) still has user:password@ after
	// its scheme: hide everything from the user's ':' to the last '@'.
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				dsn = dsn[:i+3] + rest[:colon+1] + "xxxxx" + rest[at:]
			}
		}
	}
	return dsn
}
