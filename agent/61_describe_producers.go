package agent

// DescribeProducers, v0.
//
// Reports, per partition, the idempotent and transactional producers it
// remembers (KIP-664), as kafka-transactions.sh describe-producers and
// admin clients ask to find hanging transactions: producer ID and epoch,
// the sequence of its last record, the time of its last write, and the
// first offset of its open transaction there (-1 if none). The state is
// read from etcd (metadata.Store.PartitionProducers: the shard's producer
// snapshots and the log since, replayed with this agent's producer
// rules), so it is what the next commit to the partition will check
// against; producers idle past the expiry and with no transaction open
// are left out, as Kafka's expiry removes them.
//
// Differences from Kafka: any agent answers for any partition (Kafka
// answers NOT_LEADER_OR_FOLLOWER on a broker that does not lead it; the
// leader Metadata names is where clients send it, and it answers the
// same); the last timestamp is the commit time of the producer's last
// batch, not its records' maximum timestamp; the coordinator epoch is -1,
// since floe's coordinators have no epochs (markers carry 0).
//
// It needs READ on the topic (TOPIC_AUTHORIZATION_FAILED), as Kafka does;
// a topic or partition that does not exist is UNKNOWN_TOPIC_OR_PARTITION.

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 61, min: 0, max: 0, serve: handleAsync((*Agent).handleDescribeProducers)})
}

// describeProducersParallel bounds the partitions one request reads from
// etcd at a time.
const describeProducersParallel = 8

func (a *Agent) handleDescribeProducers(ctx context.Context, rq *request, req *kmsg.DescribeProducersRequest) (*kmsg.DescribeProducersResponse, error) {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, describeProducersParallel)
	)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DescribeProducersResponseTopicPartition, len(rt.Partitions))
		var (
			t    metadata.Topic
			terr error
		)
		if !a.authorizedTopic(rq.conn, metadata.ACLOpRead, rt.Topic) {
			terr = kafkaErrorf(kerr.TopicAuthorizationFailed, "%s may not read topic %s", rq.conn.auth.principal, rt.Topic)
		} else {
			t, terr = a.lookupTopic(ctx, rt.Topic)
		}
		for i, p := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Default()
			sp.Partition = p
			if terr != nil {
				setProducersError(sp, terr)
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				a.describePartitionProducers(ctx, t, sp)
			}()
		}
		resp.Topics = append(resp.Topics, st)
	}
	wg.Wait()
	return resp, nil
}

// describePartitionProducers fills in one partition's answer.
func (a *Agent) describePartitionProducers(ctx context.Context, t metadata.Topic, sp *kmsg.DescribeProducersResponseTopicPartition) {
	infos, err := a.store.PartitionProducers(ctx, t, sp.Partition, metadata.CommitConfig{MaxProducersPerPartition: a.cfg.MaxProducersPerPartition})
	if err != nil {
		setProducersError(sp, err)
		return
	}
	for _, pi := range infos {
		ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
		ap.ProducerID = pi.ProducerID
		ap.ProducerEpoch = int32(pi.Epoch)
		ap.LastSequence = pi.LastSequence()
		ap.LastTimestamp = pi.LastWrite
		ap.CoordinatorEpoch = -1
		ap.CurrentTxnStartOffset = pi.TxnStart()
		sp.ActiveProducers = append(sp.ActiveProducers, ap)
	}
}

func setProducersError(sp *kmsg.DescribeProducersResponseTopicPartition, err error) {
	ke, msg := kafkaError(err)
	sp.ErrorCode = ke.Code
	sp.ErrorMessage = errMessage(msg)
}
