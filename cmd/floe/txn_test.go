package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type txnListJSON struct {
	Transactions []txnSummary `json:"transactions"`
}

type txnDescribeJSON struct {
	Transactions []txnReport `json:"transactions"`
}

type txnProducersJSON struct {
	Topic      string            `json:"topic"`
	Partitions []producersReport `json:"partitions"`
}

// floe txn list, describe and producers show an open transaction, its
// partition and producer, then its commit; filters apply; unknown IDs,
// topics and partitions fail with exit status 1.
func TestTxnListDescribeProducers(t *testing.T) {
	b := startTestAgent(t, nil)
	mustRun(t, "", "topic", "create", "orders", "-p", "2", "-b", b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := kgo.NewClient(kgo.SeedBrokers(b), kgo.TransactionalID("orders-tx"), kgo.DefaultProduceTopic("orders"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(40*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := p.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	list := decodeJSON[txnListJSON](t, mustRun(t, "", "txn", "list", "-o", "json", "-b", b).stdout)
	if len(list.Transactions) != 1 || list.Transactions[0].TransactionalID != "orders-tx" || list.Transactions[0].ProducerID != pid || list.Transactions[0].State != "Ongoing" {
		t.Fatalf("txn list: %+v", list)
	}
	r := mustRun(t, "", "txn", "list", "-b", b)
	if !strings.Contains(r.stdout, "TRANSACTIONAL-ID  COORDINATOR  PRODUCER-ID  STATE") || !strings.Contains(r.stdout, "orders-tx") || !strings.Contains(r.stdout, "Ongoing") {
		t.Errorf("txn list table:\n%s", r.stdout)
	}
	for _, tc := range []struct {
		args   []string
		listed bool
	}{
		{[]string{"--state", "ongoing,empty"}, true},
		{[]string{"--state", "CompleteCommit"}, false},
		{[]string{"--producer-id", "999999"}, false},
		{[]string{"--min-duration", "1ms"}, true},
		{[]string{"--min-duration", "1h"}, false},
		{[]string{"--pattern", "orders-.*"}, true},
		{[]string{"--pattern", "orders"}, false},
	} {
		time.Sleep(2 * time.Millisecond)
		got := decodeJSON[txnListJSON](t, mustRun(t, "", append([]string{"txn", "list", "-o", "json", "-b", b}, tc.args...)...).stdout)
		if (len(got.Transactions) == 1) != tc.listed {
			t.Errorf("txn list %s: %+v, want listed %v", strings.Join(tc.args, " "), got, tc.listed)
		}
	}

	desc := decodeJSON[txnDescribeJSON](t, mustRun(t, "", "txn", "describe", "orders-tx", "-o", "json", "-b", b).stdout)
	if len(desc.Transactions) != 1 {
		t.Fatalf("txn describe: %+v", desc)
	}
	d := desc.Transactions[0]
	if d.TransactionalID != "orders-tx" || d.ProducerID != pid || d.ProducerEpoch != epoch || d.State != "Ongoing" || d.TimeoutMs != 40000 ||
		d.StartTimeMs == nil || d.DurationMs == nil || *d.DurationMs < 0 ||
		len(d.Partitions) != 1 || d.Partitions[0].Topic != "orders" || len(d.Partitions[0].Partitions) != 1 || d.Partitions[0].Partitions[0] != 0 {
		t.Fatalf("txn describe: %+v", d)
	}
	r = mustRun(t, "", "txn", "describe", "orders-tx", "-b", b)
	for _, want := range []string{"COORDINATOR  TRANSACTIONAL-ID  PRODUCER-ID  EPOCH  STATE    TIMEOUT-MS  START-TIME-MS  DURATION-MS  PARTITIONS", "orders-tx", "Ongoing", "40000", "orders:0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("txn describe table lacks %q:\n%s", want, r.stdout)
		}
	}

	prods := decodeJSON[txnProducersJSON](t, mustRun(t, "", "txn", "producers", "orders", "-o", "json", "-b", b).stdout)
	if prods.Topic != "orders" || len(prods.Partitions) != 2 || len(prods.Partitions[1].Producers) != 0 || len(prods.Partitions[0].Producers) != 1 {
		t.Fatalf("txn producers: %+v", prods)
	}
	if pr := prods.Partitions[0].Producers[0]; pr.ProducerID != pid || pr.ProducerEpoch != epoch || pr.LastSequence != 0 || pr.CurrentTxnStartOffset == nil || *pr.CurrentTxnStartOffset != 0 {
		t.Fatalf("txn producers, partition 0: %+v", pr)
	}
	r = mustRun(t, "", "txn", "producers", "orders", "0", "-b", b)
	if lines := nonEmptyLines(r.stdout); len(lines) != 2 || !strings.HasPrefix(lines[0], "PARTITION  PRODUCER-ID  EPOCH  COORDINATOR-EPOCH  LAST-SEQUENCE  LAST-TIMESTAMP  TXN-START-OFFSET") || !strings.HasSuffix(lines[1], " 0") {
		t.Errorf("txn producers table:\n%s", r.stdout)
	}

	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	d = decodeJSON[txnDescribeJSON](t, mustRun(t, "", "txn", "describe", "orders-tx", "-o", "json", "-b", b).stdout).Transactions[0]
	if d.State != "CompleteCommit" || d.StartTimeMs != nil || d.DurationMs != nil || len(d.Partitions) != 0 {
		t.Fatalf("txn describe after the commit: %+v", d)
	}
	r = mustRun(t, "", "txn", "describe", "orders-tx", "-b", b)
	if lines := nonEmptyLines(r.stdout); len(lines) != 2 || !slices.Equal(strings.Fields(lines[1])[4:], []string{"CompleteCommit", "40000", "-", "-", "-"}) {
		t.Errorf("txn describe table after the commit:\n%s", r.stdout)
	}
	prods = decodeJSON[txnProducersJSON](t, mustRun(t, "", "txn", "producers", "orders", "0", "-o", "json", "-b", b).stdout)
	if len(prods.Partitions) != 1 || len(prods.Partitions[0].Producers) != 1 || prods.Partitions[0].Producers[0].CurrentTxnStartOffset != nil {
		t.Fatalf("txn producers after the commit: %+v", prods)
	}

	wantFail(t, 1, "transactional ID \"nope\" does not exist (list transactional IDs with `floe txn list`)", "", "txn", "describe", "nope", "-b", b)
	r = wantFail(t, 1, "1 of 2 transactional IDs failed", "", "txn", "describe", "orders-tx", "nope", "-o", "json", "-b", b)
	if got := decodeJSON[txnDescribeJSON](t, r.stdout); len(got.Transactions) != 1 || got.Transactions[0].TransactionalID != "orders-tx" {
		t.Errorf("txn describe of one known and one unknown ID: %+v", got)
	}
	wantFail(t, 1, `topic "orders" has no partition 5: it has 2 partitions (0-1)`, "", "txn", "producers", "orders", "5", "-b", b)
	wantFail(t, 1, `topic "nope" does not exist`, "", "txn", "producers", "nope", "-b", b)
}

func TestTxnUsageErrorsExit2(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"txn", "list", "--state", "Bogus"}, `--state "Bogus": use Empty, Ongoing`},
		{[]string{"txn", "list", "--min-duration", "-1s"}, "is negative"},
		{[]string{"txn", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"txn", "describe"}, "missing TRANSACTIONAL-ID"},
		{[]string{"txn", "producers"}, "missing TOPIC"},
		{[]string{"txn", "producers", "orders", "x"}, `partition "x" is not a partition number`},
		{[]string{"txn", "frobnicate"}, `unknown command "frobnicate" for "floe txn"`},
	} {
		r := runCLI(t, "", tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "--help' for usage") {
			t.Errorf("floe %s: want exit 2 with %q and a pointer to --help, got %v", strings.Join(tt.args, " "), tt.want, r)
		}
	}
	if r := runCLI(t, "", "txn"); r.code != 0 || !strings.Contains(r.stdout, "producers") {
		t.Errorf("floe txn: %v", r)
	}
}
