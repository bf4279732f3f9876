package main

import (
	"context"
	"testing"
	"time"
)

// fakeClock moves only when told: SleepUntil jumps to the time asked.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if t.After(c.now) {
		c.now = t
	}
	return ctx.Err()
}

func TestTimetable(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tt := newTimetable(start, 400, 0, time.Second) // every 2.5 ms for a second
	for _, c := range []struct {
		i    int64
		want time.Duration
		ok   bool
	}{{0, 0, true}, {1, 2500 * time.Microsecond, true}, {399, 997500 * time.Microsecond, true}, {400, time.Second, false}} {
		at, ok := tt.due(c.i)
		if ok != c.ok || (ok && !at.Equal(start.Add(c.want))) {
			t.Errorf("due(%d) = %v %v, want +%v %v", c.i, at.Sub(start), ok, c.want, c.ok)
		}
	}
	limited := newTimetable(start, 400, 10, time.Hour)
	if _, ok := limited.due(9); !ok {
		t.Error("request 9 of 10 is not due")
	}
	if _, ok := limited.due(10); ok {
		t.Error("request 10 of 10 is due")
	}
}

// A stall of the server (send blocking) must not move the timetable: the
// requests that came due during it keep their due time, so their latency
// counts the stall.
func TestScheduleKeepsTheTimetableThroughAStall(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &fakeClock{now: start}
	tt := newTimetable(start, 100, 0, time.Second) // every 10 ms
	var got []job
	var sentAt []time.Time
	n := schedule(context.Background(), tt, clk, func(j job) bool {
		got = append(got, j)
		sentAt = append(sentAt, clk.now)
		if j.seq == 10 {
			clk.now = clk.now.Add(95 * time.Millisecond) // every connection busy for 95 ms
		}
		return true
	})
	if n != 100 || len(got) != 100 {
		t.Fatalf("handed over %d (%d), want 100", n, len(got))
	}
	for i, j := range got {
		if j.seq != int64(i) || !j.due.Equal(start.Add(time.Duration(i)*10*time.Millisecond)) {
			t.Fatalf("job %d: seq %d due +%v, want +%v", i, j.seq, j.due.Sub(start), time.Duration(i)*10*time.Millisecond)
		}
	}
	// Requests 11..19 came due during the stall and go at once, late; 20
	// is on time again.
	for i := 11; i <= 19; i++ {
		if lag := sentAt[i].Sub(got[i].due); lag <= 0 {
			t.Errorf("request %d sent %v after due, want late", i, lag)
		}
	}
	if !sentAt[20].Equal(got[20].due) || !sentAt[9].Equal(got[9].due) {
		t.Errorf("requests 9 and 20 sent at +%v and +%v, want on time", sentAt[9].Sub(start), sentAt[20].Sub(start))
	}
}

func TestScheduleStops(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tt := newTimetable(start, 1000, 0, time.Hour)
	stopAt := int64(7)
	n := schedule(context.Background(), tt, &fakeClock{now: start}, func(j job) bool { return j.seq < stopAt })
	if n != stopAt {
		t.Errorf("send refusing at %d: handed over %d", stopAt, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n := schedule(ctx, tt, &fakeClock{now: start}, func(job) bool { return true }); n != 0 {
		t.Errorf("cancelled: handed over %d", n)
	}
	if n := schedule(context.Background(), newTimetable(start, 1000, 25, time.Hour), &fakeClock{now: start}, func(job) bool { return true }); n != 25 {
		t.Errorf("limited to 25: handed over %d", n)
	}
}
