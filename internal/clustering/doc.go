// Package clustering keeps a cluster's replication topology correct without losing an
// acknowledged write. It is the observe → decide → act loop of docs/clustering.md:
//
//   - Observe queries every instance concurrently with short timeouts and builds an immutable
//     Observation (observe.go).
//   - Decide is a pure function from an Observation to a Plan: a State, conditions, per-instance
//     status and an ordered list of idempotent Steps (decide*.go). It never does I/O and never
//     mutates its input; every rule of docs/clustering.md is pinned by a case of its table test.
//   - Act runs a Plan's steps in order against the instances and reports what happened
//     (act.go).
//   - Loop runs passes for one cluster on a ticker and on demand (loop.go). The operator hosts
//     one Loop per MySQLCluster; tests drive the same Loop against real mariadbd processes.
//
// Nothing here knows about Kubernetes: Pod facts, credentials and the spec come in through a
// Source, and status, labels, restarts, clones and events go out through a Sink.
package clustering
