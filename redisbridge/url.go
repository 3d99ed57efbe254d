package redisbridge

import (
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedactURL is a Redis URL with its password hidden, for logs and errors.
// A user without a password (redis://secret@host) is hidden too: it is
// most often a password written without its ":".
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Opaque != "" || (p.User == nil && strings.Contains(u, "@")) {
		return "<unparsable Redis URL>"
	}
	if p.User != nil {
		if _, has := p.User.Password(); !has {
			p.User = url.User("xxxxx")
		}
	}
	return p.Redacted()
}

// parseURL is go-redis's options for u. Its errors may quote u (url.Parse
// does), so they are replaced by one that names only the redacted URL.
func parseURL(u string) (*redis.Options, error) {
	scheme, _, _ := strings.Cut(u, "://")
	if scheme != "redis" && scheme != "rediss" {
		return nil, &ConfigError{"URL", RedactURL(u), "use redis://[:password@]host:port/db, or rediss:// for TLS"}
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		return nil, &ConfigError{"URL", RedactURL(u), "not a Redis URL (redis://[:password@]host:port/db)"}
	}
	return opt, nil
}
