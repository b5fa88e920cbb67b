// Package metadata owns everything floe keeps in etcd: the cluster
// identity, live agents (under leases), topics and their configuration,
// partition state (high watermark, log start, producer sequences), the
// segment index, consumer groups, producer IDs, and the transaction
// coordinator's state.
//
// Every key lives under a per-cluster root, /floe/<cluster>/, so several
// clusters can share one etcd. docs/design.md lists the key layout.
//
// Rules this package keeps:
//   - Writes that depend on what was read compare in the same transaction
//     (mod or create revision); nothing is read-then-written blindly.
//   - Values are JSON documents with a version field, decoded by functions
//     that never panic on foreign or corrupt data.
//   - The View keeps an in-memory copy of topics and agents fresh through
//     one etcd watch per prefix; callers that need read-your-writes wait for
//     a revision with View.WaitRevision.
//
// metadata is a leaf: it imports etcd's client and nothing from agent,
// segments or compactor.
package metadata
