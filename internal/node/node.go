// Package node holds what every floe process role (an agent, the
// compactor) runs on, so the roles share one definition of it.
package node

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Deps are the components a role runs on: the cluster's state in etcd,
// its bucket, a logger, and where its metrics are registered.
type Deps struct {
	Store    *metadata.Store
	Bucket   segments.Bucket
	Log      *slog.Logger
	Registry prometheus.Registerer // may be nil
}
