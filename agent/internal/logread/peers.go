package logread

import (
	"context"
	"errors"
	"fmt"
)

// Reads shared across a zone.
//
// The agents of a zone share their reads of the bucket: each object
// range (a chunk, or an extent read on its own) has an owner among them,
// and an agent that does not hold a range asks its owner for it instead
// of the bucket. The owner reads it once, through its chunk cache, for
// every agent that asks, so a zone GETs each chunk about once however
// many agents and consumer groups read it. Which agent owns a range, and
// how agents reach each other, is the PeerReader's business (the agent
// package); a range a peer cannot serve is read from the bucket.

// PeerReader reads object ranges from the agent of this agent's zone that
// owns them.
type PeerReader interface {
	// ReadRange returns bytes [start, end) of object (fewer when the
	// object is shorter) as read by the agent owning that range. owned is
	// true when this agent owns it, or has no peer to ask: the caller
	// reads it itself, and data and err are nil. An error means the owner
	// could not serve it; errors.Is(err, ErrMissingObject) when the
	// owner found the object missing.
	ReadRange(ctx context.Context, object string, start, end int64) (data []byte, owned bool, err error)
}

// servingPeer marks a read done for a peer: it never goes to another
// peer, so agents whose views of the zone differ for a moment cannot
// pass a range around.
type servingPeer struct{}

// ServeRange returns bytes [start, end) of object for a peer, through the
// chunk cache: concurrent requests of one range, from peers and from this
// agent's own fetches, share one GET, and the range stays cached for
// those to come. The bytes are shared and must not be modified.
func (r *Reader) ServeRange(ctx context.Context, object string, start, end int64) ([]byte, error) {
	if start < 0 || end <= start {
		return nil, fmt.Errorf("range [%d, %d) of %s: %w", start, end, object, errBadRange)
	}
	ctx = context.WithValue(ctx, servingPeer{}, true)
	data, err := r.chunk(ctx, chunkSpan{key: chunkKey{object, start, end}, start: start, end: end}, nil)
	if err != nil {
		return nil, err
	}
	r.metrics.peerServed.Inc()
	r.metrics.peerServedBytes.Add(float64(len(data)))
	return data, nil
}

var errBadRange = errors.New("bad range")

// readShared reads length bytes of object at offset from the range's
// owner in the zone, or from the bucket when this agent owns it, the
// read is for a peer, or the owner failed.
func (r *Reader) readShared(ctx context.Context, object string, offset, length int64, arrived func([]byte)) ([]byte, error) {
	if r.peers == nil || ctx.Value(servingPeer{}) != nil {
		return r.readRange(ctx, object, offset, length, arrived)
	}
	data, owned, err := r.peers.ReadRange(ctx, object, offset, offset+length)
	switch {
	case owned:
		return r.readRange(ctx, object, offset, length, arrived)
	case err == nil:
		r.metrics.peerReads.WithLabelValues("ok").Inc()
		r.metrics.peerReadBytes.Add(float64(len(data)))
		return data, nil
	case errors.Is(err, ErrMissingObject):
		// The owner read the bucket and found no object: reading it
		// again would say the same.
		r.metrics.peerReads.WithLabelValues("ok").Inc()
		return nil, err
	}
	r.metrics.peerReads.WithLabelValues("failed").Inc()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	r.log.Debug("reading from the bucket: the zone peer owning the range failed", "object", object, "offset", offset, "err", err)
	return r.readRange(ctx, object, offset, length, arrived)
}
