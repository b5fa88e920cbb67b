// Package bench is the engine of `floe bench`: it drives a floe cluster
// with franz-go producers and consumer groups, measures the object store
// and etcd underneath it in the same run, and writes one report in which
// every floe figure is also a ratio of its limit.
//
// It owns the workload (records, keys, rates, a partition sweep, fleets
// of producers), the measurements (latency histograms, scrapes of the
// agents' /metrics, raw PUT, GET and etcd transaction timings, bucket
// listings around a compaction pass) and the report (a table for people,
// JSON for scripts, and the targets checked against the measured
// limits).
//
// It does not start anything: the caller hands it a Cluster (cmd/floe's
// `floe bench --local` starts MinIO, etcd and agent processes; its test
// starts an agent in-process; `-b` names a running cluster). bench may
// import segments and etcd's client; never agent or metadata, so it only
// sees floe from the outside, as a Kafka client, a Prometheus scraper and
// an object-store and etcd client would.
//
// Invariants: every goroutine a phase starts stops before the phase
// returns; a failed phase fails the run (a report is never built from a
// half-measured phase), while what floe does wrong under measurement (a
// compaction pass that errs, a fleet that loses records) is a finding
// the report states; nothing asserts a target, the report only states
// whether it was met.
package bench
