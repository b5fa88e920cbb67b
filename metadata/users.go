package metadata

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// SCRAM mechanisms floe stores credentials for, by their SASL names.
const (
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Limits on SCRAM credentials, as Kafka enforces them.
const (
	MinScramIterations = 4096
	MaxScramIterations = 16384
)

var (
	// ErrUnknownUser: no SCRAM credential exists for the user and
	// mechanism.
	ErrUnknownUser = errors.New("metadata: unknown user")
	// ErrUnsupportedMechanism: not SCRAM-SHA-256 or SCRAM-SHA-512.
	ErrUnsupportedMechanism = errors.New("metadata: unsupported SCRAM mechanism")
)

// ScramCredential is what the server keeps of a password: never the
// password, only the salt, iteration count and the two keys RFC 5802
// derives from the salted password.
type ScramCredential struct {
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

type userValue struct {
	V     int                        `json:"v"`
	Scram map[string]ScramCredential `json:"scram"`
}

// ScramHash returns the hash function of a SCRAM mechanism.
func ScramHash(mechanism string) (func() hash.Hash, error) {
	switch mechanism {
	case ScramSHA256:
		return sha256.New, nil
	case ScramSHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%w: %q (use %s or %s)", ErrUnsupportedMechanism, mechanism, ScramSHA256, ScramSHA512)
}

// NewScramCredential derives the stored credential from a salted password
// (Hi(password, salt, iterations) in RFC 5802).
func NewScramCredential(mechanism string, salt, saltedPassword []byte, iterations int) (ScramCredential, error) {
	h, err := ScramHash(mechanism)
	if err != nil {
		return ScramCredential{}, err
	}
	if iterations < MinScramIterations || iterations > MaxScramIterations {
		return ScramCredential{}, fmt.Errorf("metadata: %d iterations; SCRAM credentials need %d to %d", iterations, MinScramIterations, MaxScramIterations)
	}
	if len(salt) == 0 || len(saltedPassword) == 0 {
		return ScramCredential{}, errors.New("metadata: a SCRAM credential needs a salt and a salted password")
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(saltedPassword, "Client Key")
	stored := h()
	stored.Write(clientKey)
	return ScramCredential{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  stored.Sum(nil),
		ServerKey:  mac(saltedPassword, "Server Key"),
	}, nil
}

// userKey is users/<name>, the name path-escaped like group names.
func (s *Store) userKey(name string) string { return s.key("users/", url.PathEscape(name)) }

// UserCredentials returns a user's SCRAM credentials by mechanism.
func (s *Store) UserCredentials(ctx context.Context, name string) (map[string]ScramCredential, error) {
	key := s.userKey(name)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading user %s: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrUnknownUser, name)
	}
	var v userValue
	if err := decode(key, resp.Kvs[0].Value, &v); err != nil {
		return nil, err
	}
	return v.Scram, nil
}

// ListUsers returns every user with its mechanisms, sorted by name.
func (s *Store) ListUsers(ctx context.Context) (map[string]map[string]ScramCredential, error) {
	prefix := s.key("users/")
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	out := map[string]map[string]ScramCredential{}
	for _, kv := range resp.Kvs {
		var v userValue
		if err := decode(string(kv.Key), kv.Value, &v); err != nil {
			return nil, err
		}
		name, err := url.PathUnescape(strings.TrimPrefix(string(kv.Key), prefix))
		if err != nil {
			return nil, fmt.Errorf("%w: user key %s", ErrCorruptValue, kv.Key)
		}
		out[name] = v.Scram
	}
	return out, nil
}

// UserNames returns the sorted names of users.
func UserNames(users map[string]map[string]ScramCredential) []string {
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SetScramCredential creates or replaces one mechanism's credential of a
// user.
func (s *Store) SetScramCredential(ctx context.Context, name, mechanism string, cred ScramCredential) error {
	if name == "" {
		return errors.New("metadata: a user needs a name")
	}
	if _, err := ScramHash(mechanism); err != nil {
		return err
	}
	return s.updateUser(ctx, name, func(v *userValue) error {
		v.Scram[mechanism] = cred
		return nil
	})
}

// DeleteScramCredential removes one mechanism's credential; the user goes
// when it has none left.
func (s *Store) DeleteScramCredential(ctx context.Context, name, mechanism string) error {
	return s.updateUser(ctx, name, func(v *userValue) error {
		if _, ok := v.Scram[mechanism]; !ok {
			return fmt.Errorf("%w: %s has no %s credential", ErrUnknownUser, name, mechanism)
		}
		delete(v.Scram, mechanism)
		return nil
	})
}

func (s *Store) updateUser(ctx context.Context, name string, fn func(*userValue) error) error {
	key := s.userKey(name)
	for {
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("reading user %s: %w", name, err)
		}
		v := userValue{V: 1, Scram: map[string]ScramCredential{}}
		var cmp clientv3.Cmp
		if len(resp.Kvs) == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		} else {
			if err := decode(key, resp.Kvs[0].Value, &v); err != nil {
				return err
			}
			if v.Scram == nil {
				v.Scram = map[string]ScramCredential{}
			}
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)
		}
		if err := fn(&v); err != nil {
			return err
		}
		op := clientv3.OpPut(key, encode(v))
		if len(v.Scram) == 0 {
			op = clientv3.OpDelete(key)
		}
		tresp, err := s.cli.Txn(ctx).If(cmp).Then(op).Commit()
		if err != nil {
			return fmt.Errorf("updating user %s: %w", name, err)
		}
		if tresp.Succeeded {
			return nil
		}
	}
}
