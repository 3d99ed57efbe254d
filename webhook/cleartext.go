package webhook

import (
	"net/netip"
	"net/url"
	"strings"
)

// flyPrivate is Fly.io's private network (6PN): its addresses are in
// fdaa::/16, and traffic on it is encrypted by WireGuard between hosts.
var flyPrivate = netip.MustParsePrefix("fdaa::/16")

// Cleartext reports whether requests to rawURL would cross a network in
// clear text: an http:// URL whose host is neither loopback (localhost,
// *.localhost, 127.0.0.0/8, ::1) nor on Fly's private network (*.internal,
// *.flycast, fdaa::/16), where plain http is normal. Signatures protect
// what is sent from change, not from being read, and a bearer token in the
// URL travels in clear text too. An URL that does not parse is not
// cleartext: New refuses it anyway.
func Cleartext(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap().WithZone("")
		return !ip.IsLoopback() && !flyPrivate.Contains(ip)
	}
	if host == "localhost" {
		return false
	}
	for _, suffix := range []string{".localhost", ".internal", ".flycast"} {
		if strings.HasSuffix(host, suffix) {
			return false
		}
	}
	return true
}
