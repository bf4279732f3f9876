package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	pd "github.com/PagerDuty/go-pagerduty"

	"github.com/responder-sre/responder/integrations"
)

// call is what the transport saw of one Pager call's last answer: the SDK
// drops the headers, Retry-After among them.
type call struct {
	mu         sync.Mutex
	retryAfter time.Duration
	status     int   // the last answer's status; 0 for none
	netErr     error // the last request's transport error (the SDK flattens it)
}

type callKey struct{}

func withCall(ctx context.Context) (context.Context, *call) {
	if st, ok := ctx.Value(callKey{}).(*call); ok {
		return ctx, st
	}
	st := &call{}
	return context.WithValue(ctx, callKey{}, st), st
}

// retryAfterHeader records a 429's or 503's Retry-After on the call.
type retryAfterHeader struct {
	base http.RoundTripper
}

func (t retryAfterHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if st, ok := r.Context().Value(callKey{}).(*call); ok {
		st.mu.Lock()
		st.netErr, st.status, st.retryAfter = err, 0, 0
		if resp != nil {
			st.status = resp.StatusCode
			st.retryAfter = integrations.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		st.mu.Unlock()
	}
	return resp, err
}

// fail classifies err: 429 and 5xx are worth retrying (after Retry-After
// when PagerDuty sent one), other answers are not; network errors are.
// The routing key and the REST token never show in the text.
func (n *Notifier) fail(what string, st *call, err error) error {
	st.mu.Lock()
	after, status, netErr := st.retryAfter, st.status, st.netErr
	st.mu.Unlock()
	if status >= 200 && status < 300 {
		return nil // accepted; only its answer's body did not read
	}
	var api pd.APIError
	if errors.As(err, &api) {
		text := fmt.Sprintf("pagerduty: %s: HTTP %d %s", what, api.StatusCode, http.StatusText(api.StatusCode))
		if api.APIError.Valid && api.APIError.ErrorObject.Message != "" {
			text += ": " + clip(api.APIError.ErrorObject.Message, 200)
			if errs := api.APIError.ErrorObject.Errors; len(errs) > 0 {
				text += " (" + clip(strings.Join(errs, "; "), 300) + ")"
			}
		}
		e := errors.New(n.redact(text))
		if api.Temporary() {
			return integrations.Temporary(e, after)
		}
		return integrations.Permanent(e)
	}
	e := errors.New(n.redact(fmt.Sprintf("pagerduty: %s: %v", what, err)))
	if retry, _ := integrations.Retryable(netErr); retry || netErr != nil {
		return integrations.Temporary(e, 0) // no answer: timeout, refused, reset
	}
	if retry, _ := integrations.Retryable(err); retry {
		return integrations.Temporary(e, 0)
	}
	return integrations.Permanent(e)
}

func (n *Notifier) redact(s string) string {
	for _, secret := range n.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "<redacted>")
		}
	}
	return s
}
