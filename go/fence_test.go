package ring

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A dropped app that lives on is fenced (bootstrap.md §3.2): this test process breaks its own request
// ring, and the request behind the bad record fails with ErrBrokerGone naming the fence instead of
// timing out; later requests fail the same way; the slot stays FENCED (not handed out) while we live,
// and a newcomer is served on another slot.
func TestADroppedAppIsFencedAndFailsAtOnce(t *testing.T) {
	b := startBroker(t)
	stale := b.connect(t, "stale")
	generation := stale.ctl.load32(stale.slot + slotGeneration)
	stale.reqMu.Lock()
	err := stale.reqRing.write(frameKindData, 0, []byte("not a control record"))
	stale.reqMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = stale.List(ctx)
	e := errCode(t, err, CodeBrokerGone)
	if !strings.Contains(e.Message, "fenced") {
		t.Fatalf("the error does not name the fence: %v", e)
	}
	errCode(t, func() error { _, err := stale.List(ctx); return err }(), CodeBrokerGone)
	if got := stale.ctl.load32(stale.slot + slotState); got != slotFenced {
		t.Fatalf("slot state %d, want FENCED", got)
	}
	if got := stale.ctl.load32(stale.slot + slotGeneration); got != generation+1 {
		t.Fatalf("generation %d, want %d", got, generation+1)
	}
	newcomer := b.connect(t, "newcomer")
	if newcomer.AppID() == stale.AppID() {
		t.Fatalf("the fenced slot %d was handed to a newcomer", stale.AppID())
	}
	l, err := newcomer.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Apps) != 1 || l.Apps[0].Name != "newcomer" {
		t.Fatalf("listing %+v, want only the newcomer", l.Apps)
	}
}
