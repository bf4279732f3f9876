package outbox

import (
	"math/rand/v2"
	"time"

	"golang.org/x/time/rate"

	"github.com/responder-sre/responder/store"
)

// limiter is the token bucket of a Slack channel.
func (d *Dispatcher) limiter(channel string) *rate.Limiter {
	lim := d.limiters[channel]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(d.cfg.SlackRate), d.cfg.SlackBurst)
		d.limiters[channel] = lim
	}
	return lim
}

// slackGap is the time one message takes from a Slack channel's bucket.
func (d *Dispatcher) slackGap() time.Duration {
	return time.Duration(float64(time.Second) / d.cfg.SlackRate)
}

// backoff is the delay before retry number attempt (1 for the first
// retry): exponential from BackoffBase, capped at BackoffMax, with jitter
// over its upper half so that retries of many intents spread out.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	delay := d.cfg.BackoffMax
	if attempt < 32 {
		delay = min(d.cfg.BackoffBase<<(attempt-1), d.cfg.BackoffMax)
	}
	half := delay / 2
	return half + rand.N(half+1) //nolint:gosec // jitter, not a secret
}

// recovered is told that a target which failed answers again: the heads
// of its lanes that wait out a backoff go now, paced by the rate limit and
// any Retry-After hold, instead of each at the end of its own backoff (up
// to BackoffMax later). It runs once per recovery, not on every success.
func (d *Dispatcher) recovered(sent *store.Intent, at time.Time) {
	for _, l := range d.lanes {
		if len(l.queue) == 0 || l.busy {
			continue
		}
		in := l.queue[0]
		if targetOf(in) == targetOf(sent) && in.State == store.IntentPending && in.Attempts > 0 &&
			!in.HoldsTarget && in.NextAt.After(at) {
			in.NextAt = at
			d.schedule(l, at)
		}
	}
}
