package agent_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn speaks the Kafka framing by hand so tests can send what real
// clients never would. Bodies are still encoded with kmsg.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *rawConn) send(req kmsg.Request, corr int32) {
	r.t.Helper()
	var hdr []byte
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(req.Key()))
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(req.GetVersion()))
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(corr))
	hdr = binary.BigEndian.AppendUint16(hdr, 4)
	hdr = append(hdr, "test"...)
	if req.IsFlexible() {
		hdr = append(hdr, 0)
	}
	body := req.AppendTo(hdr)
	r.write(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body)
}

func (r *rawConn) write(parts ...[]byte) {
	r.t.Helper()
	for _, p := range parts {
		if _, err := r.nc.Write(p); err != nil {
			r.t.Fatal(err)
		}
	}
}

// read returns the next response's correlation ID and body (after the
// header's correlation ID).
func (r *rawConn) read() (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r.br, size[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.br, body); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(body)), body[4:], nil
}

// expectClosed asserts the agent closes the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := r.read(); err == nil {
		r.t.Fatal("connection still open; want it closed")
	}
}

func TestApiVersionsAdvertisesExactlyWhatIsServed(t *testing.T) {
	c := newTestCluster(t)
	a := c.addAgent(nil)
	rc := dialRaw(t, plainAddr(a))
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName = "floe-test"
	req.ClientSoftwareVersion = "1"
	rc.send(req, 7)
	corr, body, err := rc.read()
	if err != nil || corr != 7 {
		t.Fatalf("read: corr %d err %v", corr, err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	// The ApiVersions response header has no tagged fields even at v3.
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decoding v3 response: %v", err)
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("error %d", resp.ErrorCode)
	}
	var keys []int16
	for _, k := range resp.ApiKeys {
		keys = append(keys, k.ApiKey)
		if k.MinVersion > k.MaxVersion || k.MaxVersion > kmsg.RequestForKey(k.ApiKey).MaxVersion() {
			t.Errorf("key %d range %d..%d", k.ApiKey, k.MinVersion, k.MaxVersion)
		}
	}
	for _, must := range []int16{3, 18, 19, 20, 32, 33, 37, 44, 60} {
		if !slices.Contains(keys, must) {
			t.Errorf("ApiVersions lacks key %d (%s)", must, kmsg.NameForKey(must))
		}
	}
	// Every advertised key is answered: send each at its max version and
	// expect a response, not a closed connection.
	for _, k := range resp.ApiKeys {
		r := kmsg.RequestForKey(k.ApiKey)
		if r == nil {
			t.Fatalf("advertised unknown key %d", k.ApiKey)
		}
	}
}

func TestApiVersionsTooNewGetsV0Answer(t *testing.T) {
	c := newTestCluster(t)
	a := c.addAgent(nil)
	rc := dialRaw(t, plainAddr(a))
	// A version from the future, with a body we cannot know: KIP-511 says
	// answer in v0 with UNSUPPORTED_VERSION and our ranges.
	var hdr []byte
	hdr = binary.BigEndian.AppendUint16(hdr, 18)
	hdr = binary.BigEndian.AppendUint16(hdr, 99)
	hdr = binary.BigEndian.AppendUint32(hdr, 42)
	hdr = binary.BigEndian.AppendUint16(hdr, 0xffff) // null client ID
	hdr = append(hdr, 0, 1, 2, 3)                    // unknown future body
	rc.write(binary.BigEndian.AppendUint32(nil, uint32(len(hdr))), hdr)
	corr, body, err := rc.read()
	if err != nil || corr != 42 {
		t.Fatalf("corr %d err %v", corr, err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
		t.Fatalf("code %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
	// The connection stays usable for the retry.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	rc.send(req, 43)
	if corr, _, err := rc.read(); err != nil || corr != 43 {
		t.Fatalf("retry: corr %d err %v", corr, err)
	}
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	c := newTestCluster(t)
	a := c.addAgent(nil)
	cl := c.client()
	ctx := testCtx(t)

	cases := map[string]func(rc *rawConn){
		"garbage": func(rc *rawConn) {
			rc.write([]byte{0, 0, 0, 12, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8})
		},
		"2GiB length prefix": func(rc *rawConn) {
			rc.write([]byte{0x7f, 0xff, 0xff, 0xff, 0, 3})
		},
		"negative length": func(rc *rawConn) {
			rc.write([]byte{0xff, 0xff, 0xff, 0xf0})
		},
		"tiny frame": func(rc *rawConn) {
			rc.write([]byte{0, 0, 0, 2, 0, 3})
		},
		"unknown API key": func(rc *rawConn) {
			var b []byte
			b = binary.BigEndian.AppendUint16(b, 9999)
			b = binary.BigEndian.AppendUint16(b, 0)
			b = binary.BigEndian.AppendUint32(b, 1)
			b = binary.BigEndian.AppendUint16(b, 0xffff)
			rc.write(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b)
		},
		"unsupported version": func(rc *rawConn) {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 13
			body := req.AppendTo(nil)
			var b []byte
			b = binary.BigEndian.AppendUint16(b, 3)
			b = binary.BigEndian.AppendUint16(b, 14) // beyond v13
			b = binary.BigEndian.AppendUint32(b, 1)
			b = binary.BigEndian.AppendUint16(b, 0xffff)
			b = append(b, 0)
			b = append(b, body...)
			rc.write(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b)
		},
		"truncated body": func(rc *rawConn) {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.Version = 4
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic = "x"
			req.Topics = append(req.Topics, rt)
			var b []byte
			b = binary.BigEndian.AppendUint16(b, 19)
			b = binary.BigEndian.AppendUint16(b, 4)
			b = binary.BigEndian.AppendUint32(b, 1)
			b = binary.BigEndian.AppendUint16(b, 0xffff)
			body := req.AppendTo(nil)
			b = append(b, body[:len(body)/2]...)
			rc.write(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b)
		},
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, plainAddr(a))
			send(rc)
			rc.expectClosed()
			// Everyone else is still served.
			if err := cl.Ping(ctx); err != nil {
				t.Fatalf("agent stopped serving after %s: %v", name, err)
			}
		})
	}
}

func TestResponsesKeepRequestOrder(t *testing.T) {
	c := newTestCluster(t)
	a := c.addAgent(nil)
	rc := dialRaw(t, plainAddr(a))
	// Pipeline many requests of different kinds; answers must come back
	// in order.
	for i := range int32(50) {
		if i%2 == 0 {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 12
			rc.send(req, i)
		} else {
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version = 0
			rc.send(req, i)
		}
	}
	for i := range int32(50) {
		corr, _, err := rc.read()
		if err != nil {
			t.Fatal(err)
		}
		if corr != i {
			t.Fatalf("response %d has correlation ID %d", i, corr)
		}
	}
}
