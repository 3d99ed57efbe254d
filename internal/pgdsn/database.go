package pgdsn

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// IsURL tells a URL from a key=value DSN, as pgconn does.
func IsURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// WithDatabase is dsn, a URL or key=value DSN, naming database name instead
// of its own; everything else (host, user, password, TLS) is kept. name must
// be letters, digits and _: it is not quoted.
func WithDatabase(dsn, name string) (string, error) {
	if !IsURL(dsn) {
		// A later keyword overrides an earlier one (libpq and pgconn).
		return dsn + " dbname=" + name, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		// A *url.Error repeats the URL, password and all: keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("pgdsn: %s: %w", Redact(dsn), err)
	}
	u.Path, u.RawPath = "/"+name, ""
	// pgconn reads a dbname query parameter after the path: it would win.
	if q := u.Query(); q.Has("dbname") {
		q.Del("dbname")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}
