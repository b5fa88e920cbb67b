// Package fault is floe's fault suite: a whole floe cluster as separate
// processes on loopback, a workload of idempotent acks=all producers and a
// consumer group, faults injected one at a time, and a checker that proves
// no acknowledged record was lost, duplicated or moved.
//
// TestFaults (fault_test.go) starts its own etcd and MinIO (so it can stop
// them), three `floe agent`s, a `floe compactor` and a `floe exporter`
// built from ./cmd/floe, and TCP proxies (proxy.go) that can add latency
// or cut one request: between MinIO and the agents, the compactor and the
// exporter, and between etcd and the exporter. A scheduler injects, in an
// order drawn from a printed seed:
//
//	agent-kill       kill -9 of one agent, restarted
//	agent-term       SIGTERM of one agent (graceful drain), restarted; it must exit 0
//	etcd-stop        etcd paused (SIGSTOP) for 10s
//	etcd-kill        etcd killed, restarted on its data directory after 10s
//	minio-stop       MinIO paused (SIGSTOP) for 10s
//	minio-kill       MinIO killed, restarted on its data directory after 10s
//	minio-slow       every write through the MinIO proxies delayed 200-500ms, for 15s
//	compactor-kill   the compactor killed while a merged object's PUT is in
//	                 flight, or just after MinIO answered it and before the
//	                 index swap; restarted
//	compactor-kill-clean  the same, with the object of a clean of the
//	                 compacted topic
//	exporter-kill    the exporter killed while the table metadata file of a
//	                 table commit is being PUT, or just after MinIO answered
//	                 it and before the catalog commit; restarted
//	exporter-kill-manifest  the same, with the commit's manifest list
//	exporter-kill-unrecorded  the exporter killed after a table commit the
//	                 catalog took, as it first writes to etcd to record it
//	                 (its export state and export group then trail the
//	                 table); restarted
//
// The workload is three franz-go producers (idempotent, acks=all, keyed,
// every record's value starting with a unique ID), a prober that sends one
// raw produce request every 100ms and records the agents' answer (the
// producers retry retriable errors without saying so), two consumer groups
// of two members each reading the topic side by side, and a sampler of
// both groups' committed offsets. The groups differ only in protocol:
// fault-group is classic, fault-group-kip848 the consumer protocol of
// KIP-848 (kgo.ServerSideBalancer, the uniform server assignor), for
// which the agents run with a 1s heartbeat interval and a 15s session
// timeout (cluster_test.go). Their members commit every second and as they
// leave, and log to group-clients.log in the working directory. During
// every fault, 0-3s after it is injected (drawn from the seed), one member
// of each group leaves and a new one joins, so both groups rebalance while
// the fault goes on.
//
// Beside it, under the same faults, runs a transactional workload
// (txn_workload_test.go): three transactional producers (distinct
// transactional IDs) running transactions of one to six records across
// the partitions of their own topic, one in five aborted on purpose, each
// transaction's records and outcome recorded (committed; aborted; or
// unknown, a commit sent that failed or took more than 5s, as some do
// during outages, which must then be all or nothing); and a
// consume-transform-produce stage, a kgo.GroupTransactSession reading that
// topic read_committed and copying each record to an output topic in the
// transaction that commits its offsets, one in ten aborted. Its choices
// are drawn from the seed; its clients log to txn-clients.log and its
// history is written to txn-history.json in the working directory. The
// exporter exports the transactional topic to an Iceberg table
// (export_workload_test.go: floe.fault_txn, a commit a second, a SQLite
// catalog in the working directory, its files under iceberg/ in the
// bucket).
//
// A third workload (changelog_workload_test.go) updates and deletes 60
// keys of a compacted topic (cleanup.policy=compact) with an idempotent
// producer, which the compactor cleans at every pass; at the end the topic
// is read from the start and checked as Kafka promises: every record read
// was sent, with its key, at the offset it was acknowledged at; offsets
// increase; none twice; every key's latest acknowledged record is there
// unless a later one of that key is; and fewer records are read than were
// acknowledged.
//
// After each fault it waits for acknowledgements and transaction commits to
// resume. At the end it lets the stage copy everything committed, waits for
// both groups to commit the end of every partition (60s at most) and checks
// that each is served by its protocol with both members in (DescribeGroups,
// ConsumerGroupDescribe), reads every partition from the start and checks
// the history (checker.go) the way Jepsen's queue checkers do: every
// acknowledged record present exactly once at the offset it was
// acknowledged at, offsets contiguous, no record that was never sent, and
// every produce error retriable; and for each group alike, what it consumed
// agreeing with the log, its committed offsets never going backwards nor
// past the end, and every record below them consumed by one of its members
// (at least once: rereads are counted, not faulted). Every problem names
// its group and protocol. It reads both transactional topics read_committed
// and read_uncommitted (transaction markers kept) once no transaction is
// open, and checks their history (txn_checker.go): no record of an aborted
// transaction read committed, during the run or at the end; every committed
// transaction read whole and every unknown one whole or not at all (never
// torn); no duplicates, offsets increasing, each producer's transactions in
// order; and the stage's output holding every input below the group's
// committed offsets exactly once and nothing else. Once the exporter's
// table holds every record of the transactional topic read committed
// (60s at most), it reads the table (its catalog, its manifests, and
// every data file with parquet-go from MinIO) and checks it
// (export_checker.go): each committed record there exactly once, at its
// partition and offset, with its value and no key; no record of an
// aborted transaction, no duplicate, nothing else; each snapshot's
// floe.offsets moving forward and never past the topic's end; the current
// snapshot's total-records what the data files hold. It logs a line per
// group,
//
//	fault: group fault-group-kip848 (consumer protocol): consumed=N reconsumed=N committed=N consumed_mismatch=0 unconsumed=0 ...
//
// and one summary line:
//
//	fault: seed=S faults=[...] acked=N read=N lost=0 ... txns=N committed=N aborted=N unknown=N ... torn=0 aborted_read=0 ... export_rows=N export_missing=0 export_duplicated=0 ...
//
// The compactor runs with --gc-grace 30s so that garbage collection
// happens during the run, and agents with --max-commit-delay 20s, below it:
// a flush not committed 20s after its object was written fails (its
// producers retry) rather than race the collector. A commit that came
// later still would be refused in etcd (the object's doom mark, the
// collector's horizon), never left referencing a deleted object.
//
// Environment:
//
//	FLOE_FAULT_SEED=N        the seed (default: time-based; printed)
//	FLOE_FAULT_ONLY=a,b      only these faults
//	FLOE_FAULT_ROUNDS=N      rounds of every fault (default 1; 3 with FLOE_TEST_LONG=1)
//	FLOE_FAULT_KEEP=1        keep the working directory (process logs) after a pass
//	FLOE_FAULT_RACE=1        build floe with -race
//	FLOE_FAULT_MINIO=PATH    the MinIO binary (default .cache/localstack/bin/minio,
//	                         which localstack/start.sh installs)
//	FLOE_FAULT_ETCD=PATH     the etcd binary (default etcd on PATH, else `floe etcd`)
//	FLOE_FAULT_CTP_MEMBERS=N members of the consume-transform-produce stage (default 1)
//	FLOE_FAULT_CTP_END_TIMEOUT=D  how long the stage lets ending a transaction take
//	                         before it gives up and joins again (default 5s, so
//	                         outages exercise require_stable: txn_workload_test.go,
//	                         ctpEndTimeout)
//	FLOE_TEST_LONG=1         more rounds
//	FLOE_TEST_REQUIRE_LOCALSTACK=1  fail, not skip, when MinIO is not installed
//
// Only the test and its helpers live here; nothing imports this package.
package fault
