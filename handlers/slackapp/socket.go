package slackapp

import (
	"context"
	"errors"
	"sync"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// ackWithin bounds the work done before an envelope is acknowledged:
// Slack wants the acknowledgement within 3 s and shows the person an error
// after that.
const ackWithin = 2500 * time.Millisecond

// maxInFlight bounds the envelopes acted on at once: each is handled on
// its own, so that one slow Slack call does not make the next
// acknowledgement late, and a flood does not grow without bound.
const maxInFlight = 16

// Socket is the way in for a daemon behind a firewall: Responder opens a
// websocket to Slack (Socket Mode), which reconnects by itself, and
// acknowledges every envelope that comes on it.
type Socket struct {
	App    *App
	Client *socketmode.Client
	// AckWithin bounds the work before an acknowledgement; 0 is 2.5 s.
	AckWithin time.Duration
}

func (s *Socket) ackWithin() time.Duration {
	if s.AckWithin > 0 {
		return s.AckWithin
	}
	return ackWithin
}

// Run reads envelopes until ctx ends.
func (s *Socket) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Client.RunContext(ctx) }()
	log := s.App.log.With().Str("integration", "slack").Str("mode", "socket").Logger()
	var handlers sync.WaitGroup
	defer handlers.Wait()
	slots := make(chan struct{}, maxInFlight)
	handle := func(act func(context.Context, socketmode.Event), evt socketmode.Event) {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		handlers.Go(func() {
			defer func() { <-slots }()
			act(ctx, evt)
		})
	}
	for {
		select {
		case <-ctx.Done():
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case evt := <-s.Client.Events:
			switch evt.Type {
			case socketmode.EventTypeConnected:
				log.Info().Msg("slack socket mode connected")
			case socketmode.EventTypeConnectionError, socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed,
				socketmode.EventTypeErrorBadMessage:
				log.Warn().Str("event", string(evt.Type)).Msg("slack socket mode: trouble on the connection; it reconnects by itself")
			case socketmode.EventTypeInvalidAuth:
				log.Error().Msg("slack socket mode: the app-level token was refused (slack.interactivity.app_token)")
			case socketmode.EventTypeSlashCommand:
				handle(s.slashCommand, evt)
			case socketmode.EventTypeInteractive:
				handle(s.interaction, evt)
			case socketmode.EventTypeEventsAPI:
				s.ack(ctx, evt, nil)
			}
		}
	}
}

// slashCommand acts and acknowledges with the reply, which Slack shows
// the person alone.
func (s *Socket) slashCommand(ctx context.Context, evt socketmode.Event) {
	sc, ok := evt.Data.(slackgo.SlashCommand)
	if !ok {
		s.ack(ctx, evt, nil)
		return
	}
	actx, cancel := context.WithTimeout(ctx, s.ackWithin())
	reply := s.App.Command(actx, sc)
	cancel()
	if reply == "" {
		s.ack(ctx, evt, nil)
		return
	}
	s.ack(ctx, evt, map[string]string{"response_type": slackgo.ResponseTypeEphemeral, "text": reply})
}

// interaction acts on a button or a modal and acknowledges, with a
// modal's errors when its input was refused.
func (s *Socket) interaction(ctx context.Context, evt socketmode.Event) {
	cb, ok := evt.Data.(slackgo.InteractionCallback)
	if !ok {
		s.ack(ctx, evt, nil)
		return
	}
	actx, cancel := context.WithTimeout(ctx, s.ackWithin())
	payload := s.App.Interaction(actx, cb)
	cancel()
	s.ack(ctx, evt, payload)
}

// ack sends the acknowledgement, unless ctx ends first (the client has
// stopped reading what it should send).
func (s *Socket) ack(ctx context.Context, evt socketmode.Event, payload any) {
	if evt.Request == nil {
		return
	}
	err := s.Client.AckCtx(ctx, evt.Request.EnvelopeID, payload)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.App.log.Warn().Err(err).Str("integration", "slack").Msg("slack socket mode: acknowledgement not sent")
	}
}
