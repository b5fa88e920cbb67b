// Package assignor computes the target assignment of a consumer-protocol
// (KIP-848) group: the server-side assignors "uniform" and "range", with
// the semantics Kafka 4's group coordinator gives them
// (org.apache.kafka.coordinator.group.assignor.UniformAssignor and
// RangeAssignor). The algorithms are floe's own.
//
// An assignor is a pure function of the group's members (their
// subscriptions and current target assignments) and the shapes of the
// subscribed topics. It keeps no state, starts no goroutine, does not
// modify its inputs and never shares a slice with them, and gives the same
// output for the same input whatever the order of its slices and maps. It
// imports nothing from floe and knows nothing of the Kafka protocol
// (imports_test.go checks this): the group coordinator resolves topic
// names and regexes to topic IDs, persists the target and reconciles
// members towards it.
//
// Every assignor guarantees, for every topic some member subscribes to:
// each partition goes to exactly one member subscribed to the topic, and
// never to a member that is not. Every member has an entry in the result
// (possibly empty); each topic's partitions are sorted.
//
// # Uniform
//
// Balance first, then stickiness. When all members subscribe the same
// topics, with P partitions and M members every member gets ⌊P/M⌋ or
// ⌈P/M⌉ partitions, and the ⌈P/M⌉ go to the members that currently hold
// the most, so every member keeps min(current, quota) of its current
// partitions: no balanced assignment moves fewer. So when one member joins
// or leaves a balanced group only the joiner's partitions (taken from the
// members over their new quota) or the leaver's move. The members under
// their quota take turns, each taking a
// partition of the topic it lacks most (its count furthest below the
// topic's partitions per member): a partition nobody holds, else one given
// up by the member over its quota holding the most of that topic. So a
// joiner takes a share of every topic, and a group assigned from nothing
// gets every topic spread evenly too (each member ⌊Pt/M⌋ or ⌈Pt/M⌉ of a
// topic of Pt partitions: observed on random groups in the tests, not
// proven). Kafka's homogeneous builder gives the extra partitions to the
// first members in its iteration order and deals free partitions in topic
// order, so it may move more and spread less.
//
// When subscriptions differ, every member keeps its current partitions of
// topics it still subscribes to; free partitions go, topic by topic (most
// partitions per subscriber first, as in Kafka), each to the least loaded
// subscriber. Then, while some topic's most loaded holder has two or more
// partitions more than its least loaded subscriber, a partition of the
// topic where that gap is widest moves from one to the other. The result
// is as balanced as the subscriptions allow in that sense: no partition
// could move to a subscriber of its topic holding two or more fewer (it
// need not minimise the spread between members that share no topic).
// Widest gap first takes partitions from the most loaded members, which
// keeps chains of moves rare, but the number of moves is not always the
// least possible. Partitions assigned in this round move before those a
// member already held. Kafka's heterogeneous builder balances topic by
// topic and gives up after 16 passes; this one runs until balanced, which
// ends because every move lowers the sum of the squared member loads.
//
// # Range
//
// Per topic, the subscribers are ordered and the partitions split into
// contiguous ranges in that order: with P partitions and N subscribers the
// first P%N subscribers get ⌈P/N⌉ partitions and the rest ⌊P/N⌋. Topics
// with the same partition count and the same subscribers are therefore
// co-partitioned (one member gets partition i of each). As in Kafka 4,
// static members (with an instance ID) come first, ordered by instance ID,
// then the others by member ID; with no static members the order is by
// member ID. So a static member that rejoins under a new member ID gets
// its ranges back.
//
// Range ignores current assignments. Kafka's server-side range assignor
// once kept each member's current partitions up to its quota, which can
// keep members with identical subscriptions off co-partitioning (A holding
// partitions 0-1 of one topic and 2-3 of another, B the rest, stays so);
// KAFKA-16944 (2024, in Kafka 4) dropped that stickiness for plain ranges,
// and so does floe.
//
// # Not implemented
//
// Rack awareness: Member.Rack is not used by either assignor.
//
// # Input the coordinator should not send
//
// Inputs are tolerated rather than rejected, deterministically: a
// subscribed topic missing from the topics map is ignored; a topic with a
// negative partition count has none; members given twice under one ID are
// one member with the union of their subscriptions and current partitions
// (and the smallest instance ID); a partition in the current assignment of
// several members counts as current only for the member with the smallest
// ID; current partitions of topics that are gone or no longer subscribed,
// or numbered at or past the topic's count, are ignored.
package assignor
