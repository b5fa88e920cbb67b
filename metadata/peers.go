package metadata

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// peerSecretBytes is the size of the cluster's peer secret.
const peerSecretBytes = 32

// PeerSecret returns the secret agents of the cluster present to each
// other on their peer listeners, creating it on first use. It is as
// secret as the cluster's etcd: whoever can read etcd is trusted with
// the cluster's data anyway.
func (s *Store) PeerSecret(ctx context.Context) (string, error) {
	key := s.key(keyPeerSecret)
	raw := make([]byte, peerSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("creating the peer secret: %w", err)
	}
	fresh := base64.RawURLEncoding.EncodeToString(raw)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, fresh)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return "", fmt.Errorf("reading the peer secret: %w", err)
	}
	if resp.Succeeded {
		return fresh, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 || len(kvs[0].Value) < peerSecretBytes {
		return "", fmt.Errorf("%w: %s: the peer secret is missing or short", ErrCorruptValue, key)
	}
	return string(kvs[0].Value), nil
}
