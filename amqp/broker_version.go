package amqp

import (
	"strconv"
	"strings"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// BrokerVersion is the release a broker names in its connection.start
// server properties ("product" and "version").
type BrokerVersion struct {
	Product             string // e.g. "RabbitMQ"
	Major, Minor, Patch int
	// Known is false when the version did not parse: nothing that depends
	// on the version is then assumed.
	Known bool
}

// ParseBrokerVersion reads a version such as "3.10.8", "4.0.5" or
// "4.1.0-rc.1" (a pre-release or build suffix after the patch number is
// ignored). Anything else gives a BrokerVersion that is not Known.
func ParseBrokerVersion(product, version string) BrokerVersion {
	v := BrokerVersion{Product: product}
	core, _, _ := strings.Cut(version, "-")
	core, _, _ = strings.Cut(core, "+")
	parts := strings.Split(core, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return v
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p != strconv.Itoa(n) {
			return v
		}
		nums[i] = n
	}
	v.Major, v.Minor, v.Patch, v.Known = nums[0], nums[1], nums[2], true
	return v
}

// serverVersion is the version conn's broker announced.
func serverVersion(conn *amqp091.Connection) BrokerVersion {
	product, _ := conn.Properties["product"].(string)
	version, _ := conn.Properties["version"].(string)
	return ParseBrokerVersion(product, version)
}

// UnlimitedDeliveryLimit reports whether the broker takes x-delivery-limit
// -1 as "no limit". RabbitMQ does from 4.0, where a quorum queue without the
// argument has a limit of 20. RabbitMQ 3.x accepts -1 too, and drops every
// message the first time it is given back (measured on 3.10.8; so does 0),
// so an unknown version or another product gets no argument at all: the
// 3.x behaviour, no limit there (docs/design.md, "Broker versions").
func (v BrokerVersion) UnlimitedDeliveryLimit() bool {
	return v.Known && v.Product == "RabbitMQ" && v.Major >= 4
}
