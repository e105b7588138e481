package alert

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var boardT0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// boardAlert is a transition of fingerprint fp started min minutes after boardT0.
func boardAlert(fp string, st Status, sev Severity, min int) Alert {
	return Alert{ID: "id-" + fp, Fingerprint: fp, Status: st, Severity: sev,
		StartsAt: boardT0.Add(time.Duration(min) * time.Minute)}
}

// boardRender lists fingerprint/severity, the shape the cases compare.
func boardRender(as []Alert) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.Fingerprint + "/" + string(a.Severity)
	}
	return strings.Join(parts, " ")
}

func TestBoardFiring(t *testing.T) {
	tests := []struct {
		name  string
		apply []Alert
		want  string
	}{
		{"empty", nil, ""},
		{"severity first, then oldest, then fingerprint", []Alert{
			boardAlert("i-old", StatusFiring, Info, 0),
			boardAlert("w-new", StatusFiring, Warning, 5),
			boardAlert("c-new", StatusFiring, Critical, 9),
			boardAlert("w-b", StatusFiring, Warning, 1),
			boardAlert("w-a", StatusFiring, Warning, 1),
			boardAlert("c-old", StatusFiring, Critical, 2),
		}, "c-old/critical c-new/critical w-a/warning w-b/warning w-new/warning i-old/info"},
		{"escalation replaces and re-sorts", []Alert{
			boardAlert("a", StatusFiring, Info, 0),
			boardAlert("b", StatusFiring, Warning, 1),
			boardAlert("a", StatusFiring, Critical, 0),
		}, "a/critical b/warning"},
		{"resolve removes", []Alert{
			boardAlert("a", StatusFiring, Warning, 0),
			boardAlert("b", StatusFiring, Warning, 1),
			boardAlert("a", StatusResolved, Warning, 0),
		}, "b/warning"},
		{"resolve of an unknown fingerprint is harmless", []Alert{
			boardAlert("a", StatusFiring, Info, 0),
			boardAlert("z", StatusResolved, Info, 0),
		}, "a/info"},
		{"fires again after resolve", []Alert{
			boardAlert("a", StatusFiring, Info, 0),
			boardAlert("a", StatusResolved, Info, 0),
			boardAlert("a", StatusFiring, Warning, 7),
		}, "a/warning"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBoard()
			for _, a := range tt.apply {
				b.Apply(a)
			}
			got := b.Firing()
			if got == nil {
				t.Fatal("Firing returned nil, want a non-nil slice")
			}
			if s := boardRender(got); s != tt.want {
				t.Errorf("Firing = %q, want %q", s, tt.want)
			}
		})
	}
}

func TestBoardSubscriberOrder(t *testing.T) {
	b := NewBoard()
	b.Apply(boardAlert("before", StatusFiring, Info, 0))
	snap, ch, cancel := b.Subscribe(8)
	defer cancel()
	if s := boardRender(snap); s != "before/info" {
		t.Fatalf("snapshot = %q", s)
	}
	sent := []Alert{
		boardAlert("a", StatusFiring, Info, 1),
		boardAlert("a", StatusFiring, Critical, 1),
		boardAlert("before", StatusResolved, Info, 0),
		boardAlert("a", StatusResolved, Critical, 1),
	}
	for _, a := range sent {
		b.Apply(a)
	}
	for i, want := range sent {
		got := <-ch
		if got.Fingerprint != want.Fingerprint || got.Status != want.Status || got.Severity != want.Severity {
			t.Fatalf("transition %d = %s/%s/%s, want %s/%s/%s", i,
				got.Fingerprint, got.Status, got.Severity, want.Fingerprint, want.Status, want.Severity)
		}
	}
	cancel()
	cancel() // idempotent
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	b.Apply(boardAlert("after", StatusFiring, Info, 2)) // must not panic on a closed channel
}

func TestBoardSlowSubscriberDropped(t *testing.T) {
	b := NewBoard()
	_, slow, cancelSlow := b.Subscribe(1)
	defer cancelSlow()
	_, fast, cancelFast := b.Subscribe(16)
	defer cancelFast()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			b.Apply(boardAlert(fmt.Sprint(i), StatusFiring, Info, i))
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Apply blocked on a slow subscriber")
	}

	if a, ok := <-slow; !ok || a.Fingerprint != "0" {
		t.Fatalf("slow subscriber first receive = %q, %v; want the buffered transition", a.Fingerprint, ok)
	}
	if _, ok := <-slow; ok {
		t.Fatal("slow subscriber not dropped")
	}
	cancelSlow() // after a drop: must not close twice
	for i := range 5 {
		if a := <-fast; a.Fingerprint != fmt.Sprint(i) {
			t.Fatalf("fast subscriber got %q, want %d", a.Fingerprint, i)
		}
	}
}

func TestBoardClose(t *testing.T) {
	b := NewBoard()
	b.Apply(boardAlert("a", StatusFiring, Info, 0))
	_, ch, cancel := b.Subscribe(4)
	b.Close()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Close")
	}
	cancel()
	snap, ch, cancel := b.Subscribe(4)
	defer cancel()
	if s := boardRender(snap); s != "a/info" {
		t.Errorf("snapshot after Close = %q", s)
	}
	if _, ok := <-ch; ok {
		t.Fatal("Subscribe after Close returned an open channel")
	}
	b.Apply(boardAlert("b", StatusFiring, Info, 1))
}

// TestBoardSubscribeAtomic subscribes while transitions are applied: each
// subscriber must see every transition exactly once, the ones before it in
// its snapshot and the rest, in order, on its channel.
func TestBoardSubscribeAtomic(t *testing.T) {
	const n, subscribers = 2000, 50
	b := NewBoard()

	type result struct {
		snap []Alert
		got  []Alert
	}
	results := make([]result, subscribers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	applied := make(chan struct{})
	var progress atomic.Int64
	wg.Go(func() {
		<-start
		for i := range n {
			b.Apply(boardAlert(fmt.Sprintf("%05d", i), StatusFiring, Info, 0))
			progress.Add(1)
		}
		close(applied)
	})
	for s := range subscribers {
		wg.Go(func() {
			<-start
			// Spread the subscriptions over the run so they land between
			// transitions, not all before the first.
			for progress.Load() < int64(s*n/subscribers) {
				runtime.Gosched()
			}
			snap, ch, cancel := b.Subscribe(n) // big enough never to be dropped
			<-applied
			cancel()
			var got []Alert
			for a := range ch {
				got = append(got, a)
			}
			results[s] = result{snap, got}
		})
	}
	close(start)
	wg.Wait()

	sizes := map[int]bool{}
	for s, r := range results {
		sizes[len(r.snap)] = true
		// Same StartsAt and severity: the snapshot is in fingerprint order,
		// which is the order of application.
		seen := append(r.snap, r.got...)
		if len(seen) != n {
			t.Fatalf("subscriber %d: snapshot %d + received %d = %d transitions, want %d",
				s, len(r.snap), len(r.got), len(seen), n)
		}
		for i, a := range seen {
			if want := fmt.Sprintf("%05d", i); a.Fingerprint != want {
				t.Fatalf("subscriber %d: transition %d is %s, want %s (snapshot had %d)",
					s, i, a.Fingerprint, want, len(r.snap))
			}
		}
	}
	// Not an assertion (scheduling decides), but shows whether the run
	// really interleaved subscriptions with transitions.
	t.Logf("%d distinct snapshot sizes over %d subscribers", len(sizes), subscribers)
}

func TestBoardIgnoresStaleTransitions(t *testing.T) {
	b := NewBoard()
	a := func(seq int, sev Severity, st Status) Alert {
		return Alert{ID: "e1", Seq: seq, Fingerprint: "fp", Rule: "r", Status: st, Severity: sev}
	}
	b.Apply(a(1, Info, StatusFiring))
	b.Apply(a(3, Critical, StatusFiring))
	b.Apply(a(2, Warning, StatusFiring)) // confirmed late
	if got := b.Firing(); len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("a late seq 2 took the view back: %+v", got)
	}
	b.Apply(a(5, Critical, StatusResolved))
	b.Apply(a(4, Warning, StatusFiring)) // confirmed after the resolution
	if got := b.Firing(); len(got) != 0 {
		t.Fatalf("a late firing revived a resolved alert: %+v", got)
	}
}
