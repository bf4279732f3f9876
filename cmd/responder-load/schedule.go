package main

import (
	"context"
	"time"
)

// clock is what the scheduler needs from time; tests give it a fake one.
type clock interface {
	Now() time.Time
	// SleepUntil returns at t, or earlier with ctx's error.
	SleepUntil(ctx context.Context, t time.Time) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// job is one request to send: its number, and in open loop the time it
// was due (latency is measured from then, not from when it went out).
type job struct {
	seq int64
	due time.Time
}

// timetable is the open loop's fixed schedule: request i is due at
// start + i/rate, whatever happened to the requests before it.
type timetable struct {
	start    time.Time
	interval float64 // nanoseconds from one request to the next
	requests int64   // the most requests; 0 for no limit
	end      time.Time
}

func newTimetable(start time.Time, requestsPerSec float64, requests int64, duration time.Duration) timetable {
	return timetable{start: start, interval: 1e9 / requestsPerSec, requests: requests, end: start.Add(duration)}
}

// due is when request i should be sent; false once the timetable is over
// (its request count reached, or the time past its end).
func (t timetable) due(i int64) (time.Time, bool) {
	if t.requests > 0 && i >= t.requests {
		return time.Time{}, false
	}
	at := t.start.Add(time.Duration(float64(i) * t.interval))
	return at, at.Before(t.end)
}

// schedule hands each request of the timetable to send at its due time.
// send blocks while every connection is busy: the schedule then falls
// behind, and the requests that came due meanwhile are handed over at once,
// each still carrying its own due time, so that the wait counts in their
// latency (no coordinated omission: a stalled server cannot hide its stall
// by slowing the client down). It returns the number of requests handed
// over; it stops early when ctx ends or send returns false.
func schedule(ctx context.Context, tt timetable, clk clock, send func(job) bool) int64 {
	var i int64
	for ; ; i++ {
		at, ok := tt.due(i)
		if !ok {
			return i
		}
		if at.After(clk.Now()) {
			if clk.SleepUntil(ctx, at) != nil {
				return i
			}
		}
		if ctx.Err() != nil || !send(job{seq: i, due: at}) {
			return i
		}
	}
}
