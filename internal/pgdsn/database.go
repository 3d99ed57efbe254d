package pgdsn

import (
	"fmt"
	"net/url"
	"strings"
)

// isURL tells a URL from a key=value DSN, as pgconn does.
func isURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// WithDatabase is dsn, a URL or key=value DSN, naming database name instead
// of its own; everything else (host, user, password, TLS) is kept. name must
// be letters, digits and _: it is not quoted.
func WithDatabase(dsn, name string) (string, error) {
	if !isURL(dsn) {
		// A later keyword overrides an earlier one (libpq and pgconn).
		return dsn + " dbname=" + name, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		// url.Parse's errors quote the URL, or a piece of a password with an
		// unescaped '#' or '/' (which pgx accepts): name no cause.
		return "", fmt.Errorf("pgdsn: %s: not a URL that can name another database", Redact(dsn))
	}
	u.Path, u.RawPath = "/"+name, ""
	u.RawQuery = withoutDatabase(u.RawQuery)
	return u.String(), nil
}

// withoutDatabase is a URL's raw query without its dbname or database
// parameters, which pgconn reads after the path (they would win), the other
// pairs kept byte for byte: url.Values would re-encode them by form rules,
// which pgconn does not share.
func withoutDatabase(raw string) string {
	if raw == "" {
		return ""
	}
	var kept []string
	for _, pair := range strings.Split(raw, "&") {
		key, _, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(key); err == nil && (k == "dbname" || k == "database") {
			continue
		}
		kept = append(kept, pair)
	}
	return strings.Join(kept, "&")
}
