package agent

// What the agent does not implement, in one place. Requests for these keys
// are not advertised in ApiVersions; a client that sends one anyway has
// its connection closed with a log line naming the API.
//
//   - Inter-broker and KRaft controller APIs (LeaderAndIsr, StopReplica,
//     UpdateMetadata, ControlledShutdown, Vote, BeginQuorumEpoch, ...): floe
//     has no broker-to-broker replication; etcd and the object store hold
//     all state.
//   - AlterReplicaLogDirs, DescribeLogDirs, AlterPartitionReassignments,
//     ListPartitionReassignments, ElectLeaders: agents have no local logs
//     and leadership follows live agents automatically.
//   - Delegation tokens, client quotas, telemetry.
//   - Share groups and streams groups. Consumer groups are served with
//     both the classic protocol and KIP-848's (consumer_group.go).
//   - WriteTxnMarkers, and so kafka-transactions.sh abort: coordinators
//     write their markers through the agent's own writer. Transactions,
//     DescribeTransactions, ListTransactions and DescribeProducers are
//     served (txn_coordinator.go).
//   - OffsetFetch v10, which names topics by ID; v9 is served.
//     OffsetCommit v10 is served.
