package slackapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	slackgo "github.com/slack-go/slack"
)

// HTTP is the way in for teams whose Slack can reach Responder: the app's
// request URLs. Every request is checked against the signing secret on
// its raw body (v0 HMAC-SHA256, a timestamp within five minutes, compared
// in constant time) before anything in it is read.
type HTTP struct {
	App *App
	// Secret is the app's signing secret.
	Secret string
	// BodyLimit bounds what is read of a request.
	BodyLimit int64
}

// DefaultBodyLimit is Slack's own: a delivery is far below it.
const DefaultBodyLimit = 1 << 20

// verified reads a request's body and checks Slack's signature of it. Its
// error is the answer: 401 for a bad or stale signature, 413 for a body
// over the limit.
func (h *HTTP) verified(r *http.Request) ([]byte, int, error) {
	limit := h.BodyLimit
	if limit <= 0 {
		limit = DefaultBodyLimit
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("read the request: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", limit)
	}
	sv, err := slackgo.NewSecretsVerifier(r.Header, h.Secret)
	if err != nil {
		if errors.Is(err, slackgo.ErrExpiredTimestamp) {
			return nil, http.StatusUnauthorized, errors.New("X-Slack-Request-Timestamp is more than five minutes away: refused (a replay, or a clock off)")
		}
		return nil, http.StatusUnauthorized, errors.New("X-Slack-Signature and X-Slack-Request-Timestamp are required and must be well formed")
	}
	if _, err := sv.Write(body); err != nil {
		return nil, http.StatusInternalServerError, err
	}
	if err := sv.Ensure(); err != nil {
		return nil, http.StatusUnauthorized, errors.New("X-Slack-Signature does not match the body: check slack.interactivity.signing_secret")
	}
	return body, http.StatusOK, nil
}

// Commands serves the slash command's request URL: the reply goes back in
// the answer, for the person alone, within Slack's 3 s like an envelope's.
func (h *HTTP) Commands(w http.ResponseWriter, r *http.Request) {
	body, status, err := h.verified(r)
	if err != nil {
		writeError(w, status, err)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sc, err := slackgo.SlashCommandParse(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("not a slash command: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ackWithin)
	defer cancel()
	reply := h.App.Command(ctx, sc)
	w.Header().Set("Content-Type", "application/json")
	if reply == "" { // a re-delivery, acted on before: nothing more to say
		w.WriteHeader(http.StatusOK)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"response_type": slackgo.ResponseTypeEphemeral, "text": reply})
}

// Interactivity serves the interactivity request URL: a button pressed,
// a modal submitted. The answer is the acknowledgement's payload (a
// modal's errors), else empty.
func (h *HTTP) Interactivity(w http.ResponseWriter, r *http.Request) {
	body, status, err := h.verified(r)
	if err != nil {
		writeError(w, status, err)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		writeError(w, http.StatusBadRequest, errors.New("payload: required: Slack posts the interaction as a form field named payload"))
		return
	}
	var cb slackgo.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("payload: not an interaction: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ackWithin)
	defer cancel()
	answer := h.App.Interaction(ctx, cb)
	w.Header().Set("Content-Type", "application/json")
	if answer == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	_ = json.NewEncoder(w).Encode(answer)
}

// ServeHTTP serves both request URLs: .../commands and .../interactivity.
func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/commands"):
		h.Commands(w, r)
	case strings.HasSuffix(r.URL.Path, "/interactivity"):
		h.Interactivity(w, r)
	default:
		writeError(w, http.StatusNotFound, errors.New("Slack request URLs are .../slack/commands and .../slack/interactivity"))
	}
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
