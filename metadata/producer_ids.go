package metadata

import (
	"context"
	"fmt"
	"math"

	clientv3 "go.etcd.io/etcd/client/v3"
)

type producerIDsValue struct {
	V    int   `json:"v"`
	Next int64 `json:"next"`
}

// AllocateProducerIDs reserves n consecutive producer IDs cluster-wide and
// returns the first. Agents reserve blocks and hand them out locally, so
// InitProducerId rarely touches etcd.
func (s *Store) AllocateProducerIDs(ctx context.Context, n int64) (int64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("metadata: allocating %d producer IDs", n)
	}
	key := s.key(prefixProducer)
	for {
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			return 0, fmt.Errorf("reading producer ID counter: %w", err)
		}
		var (
			cur producerIDsValue
			cmp clientv3.Cmp
		)
		if len(resp.Kvs) == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		} else {
			if err := decode(key, resp.Kvs[0].Value, &cur); err != nil {
				return 0, err
			}
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)
		}
		if cur.Next < 0 || cur.Next > math.MaxInt64-n {
			return 0, fmt.Errorf("%w: producer ID counter %d", ErrCorruptValue, cur.Next)
		}
		next := producerIDsValue{V: 1, Next: cur.Next + n}
		tresp, err := s.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, encode(next))).Commit()
		if err != nil {
			return 0, fmt.Errorf("allocating producer IDs: %w", err)
		}
		if tresp.Succeeded {
			return cur.Next, nil
		}
	}
}

// ProducerIDLimit reads the producer ID allocation counter: every ID
// below it was handed out to some agent, none at or above it ever was.
func (s *Store) ProducerIDLimit(ctx context.Context) (int64, error) {
	key := s.key(prefixProducer)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("reading producer ID counter: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	var cur producerIDsValue
	if err := decode(key, resp.Kvs[0].Value, &cur); err != nil {
		return 0, err
	}
	return cur.Next, nil
}
