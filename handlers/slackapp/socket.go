package slackapp

import (
	"context"
	"errors"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// ackWithin bounds the work done before an envelope is acknowledged:
// Slack wants the acknowledgement within 3 s and shows the person an error
// after that.
const ackWithin = 2500 * time.Millisecond

// Socket is the way in for a daemon behind a firewall: Responder opens a
// websocket to Slack (Socket Mode), which reconnects by itself, and
// acknowledges every envelope that comes on it.
type Socket struct {
	App    *App
	Client *socketmode.Client
}

// Run reads envelopes until ctx ends.
func (s *Socket) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Client.RunContext(ctx) }()
	log := s.App.log.With().Str("integration", "slack").Str("mode", "socket").Logger()
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
				s.slashCommand(ctx, evt)
			case socketmode.EventTypeInteractive:
				s.interaction(ctx, evt)
			case socketmode.EventTypeEventsAPI:
				s.ack(evt, nil)
			}
		}
	}
}

// slashCommand acts and acknowledges with the reply, which Slack shows
// the person alone.
func (s *Socket) slashCommand(ctx context.Context, evt socketmode.Event) {
	sc, ok := evt.Data.(slackgo.SlashCommand)
	if !ok {
		s.ack(evt, nil)
		return
	}
	actx, cancel := context.WithTimeout(ctx, ackWithin)
	reply := s.App.Command(actx, sc)
	cancel()
	if reply == "" {
		s.ack(evt, nil)
		return
	}
	s.ack(evt, map[string]string{"response_type": slackgo.ResponseTypeEphemeral, "text": reply})
}

// interaction acts on a button or a modal and acknowledges, with a
// modal's errors when its input was refused.
func (s *Socket) interaction(ctx context.Context, evt socketmode.Event) {
	cb, ok := evt.Data.(slackgo.InteractionCallback)
	if !ok {
		s.ack(evt, nil)
		return
	}
	actx, cancel := context.WithTimeout(ctx, ackWithin)
	payload := s.App.Interaction(actx, cb)
	cancel()
	s.ack(evt, payload)
}

func (s *Socket) ack(evt socketmode.Event, payload any) {
	if evt.Request == nil {
		return
	}
	var err error
	if payload == nil {
		err = s.Client.Ack(*evt.Request)
	} else {
		err = s.Client.Ack(*evt.Request, payload)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		s.App.log.Warn().Err(err).Str("integration", "slack").Msg("slack socket mode: acknowledgement not sent")
	}
}
