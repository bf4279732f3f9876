package slackapp

import (
	"context"
	"errors"
	"strings"

	slackgo "github.com/slack-go/slack"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/integrations/slack"
	"github.com/responder-sre/responder/store"
)

// The modals the buttons open, and their inputs.
const (
	viewUpdate  = "responder.update"
	viewResolve = "responder.resolve"
	blockText   = "text"
	blockETA    = "eta"
	blockSum    = "summary"
	inputAction = "value"
)

// Interaction acts on a button pressed on an incident's root, or a modal
// submitted, and returns the acknowledgement's payload: nil, or for a
// modal whose input was refused, the errors Slack shows beside it.
func (a *App) Interaction(ctx context.Context, cb slackgo.InteractionCallback) any {
	switch cb.Type {
	case slackgo.InteractionTypeBlockActions:
		for _, act := range cb.ActionCallback.BlockActions {
			if err := a.press(ctx, cb, act); err != nil && !errors.Is(err, incident.ErrAlreadyDone) {
				a.tell(ctx, cb, a.refusal(err))
			}
		}
		return nil
	case slackgo.InteractionTypeViewSubmission:
		return a.submit(ctx, cb)
	}
	return nil
}

// tell says text to the person who pressed, in the channel where they did.
func (a *App) tell(ctx context.Context, cb slackgo.InteractionCallback, text string) {
	if cb.Channel.ID == "" || cb.User.ID == "" {
		return
	}
	if err := a.slack.Ephemeral(ctx, cb.Channel.ID, "", cb.User.ID, text); err != nil {
		a.log.Warn().Err(err).Str("integration", "slack").Msg("slack: could not tell a person why their action was refused")
	}
}

// press carries out one button of the root: the value is the incident,
// followed for a checklist step by the step's ID.
func (a *App) press(ctx context.Context, cb slackgo.InteractionCallback, act *slackgo.BlockAction) error {
	id, step, _ := strings.Cut(act.Value, " ")
	if !incident.ValidID(id) {
		return &refused{"Not done: this button names no incident."}
	}
	who, err := a.actor(ctx, cb.Team.ID, cb.User.ID)
	if err != nil {
		return err
	}
	ctx = incident.Once(ctx, deliveryKey(cb.Team.ID, cb.TriggerID+"\x00"+act.ActionID))
	switch act.ActionID {
	case slack.ActionAcknowledge:
		_, err = a.svc.Acknowledge(ctx, id, incident.AckRequest{By: who}, who)
	case slack.ActionRecovery, slack.ActionComms:
		name, err := a.userName(ctx, cb.User.ID)
		if err != nil {
			return err
		}
		req := incident.RolesRequest{By: who}
		if act.ActionID == slack.ActionRecovery {
			req.RecoveryLead = &name
		} else {
			req.CommsLead = &name
		}
		_, err = a.svc.SetRoles(ctx, id, req, who)
		return err
	case slack.ActionStep:
		_, err = a.svc.MarkStep(ctx, id, incident.StepRequest{Step: step, State: store.StepDone, By: who}, who)
	case slack.ActionUpdate:
		return a.slack.OpenView(ctx, cb.TriggerID, updateModal(id))
	case slack.ActionResolve:
		return a.slack.OpenView(ctx, cb.TriggerID, resolveModal(id))
	default:
		return &refused{"Not done: Responder does not know the button " + act.ActionID + "."}
	}
	return err
}

func plain(text string) *slackgo.TextBlockObject {
	return slackgo.NewTextBlockObject(slackgo.PlainTextType, text, false, false)
}

// input is a modal's text input.
func input(blockID, label, placeholder string, multiline, optional bool) *slackgo.InputBlock {
	el := slackgo.NewPlainTextInputBlockElement(plain(placeholder), inputAction)
	el.Multiline = multiline
	b := slackgo.NewInputBlock(blockID, plain(label), nil, el)
	b.Optional = optional
	return b
}

// updateModal asks for a progress update and an optional ETA.
func updateModal(id string) slackgo.ModalViewRequest {
	return slackgo.ModalViewRequest{
		Type: slackgo.VTModal, CallbackID: viewUpdate, PrivateMetadata: id,
		Title: plain("Update " + id), Submit: plain("Post update"), Close: plain("Cancel"),
		Blocks: slackgo.Blocks{BlockSet: []slackgo.Block{
			input(blockText, "What is happening", "Rolled back 2.41.4; error rate falling", true, false),
			input(blockETA, "ETA for recovery (30m, 2h, or UTC 2026-12-02 15:30)", "30m", false, true),
		}},
	}
}

// resolveModal asks for the resolution's summary.
func resolveModal(id string) slackgo.ModalViewRequest {
	return slackgo.ModalViewRequest{
		Type: slackgo.VTModal, CallbackID: viewResolve, PrivateMetadata: id,
		Title: plain("Resolve " + id), Submit: plain("Resolve"), Close: plain("Cancel"),
		Blocks: slackgo.Blocks{BlockSet: []slackgo.Block{
			input(blockSum, "Summary", "What happened and how it ended", true, true),
		}},
	}
}

// viewErrors is the acknowledgement that keeps a modal open with a
// message beside an input.
func viewErrors(blockID, msg string) any {
	return map[string]any{"response_action": "errors", "errors": map[string]string{blockID: msg}}
}

// submit acts on a submitted modal. A refusal keeps it open with the
// reason beside the input it is about (the text, else the first).
func (a *App) submit(ctx context.Context, cb slackgo.InteractionCallback) any {
	id := cb.View.PrivateMetadata
	value := func(block string) string {
		return strings.TrimSpace(cb.View.State.Values[block][inputAction].Value)
	}
	first := blockText
	if cb.View.CallbackID == viewResolve {
		first = blockSum
	}
	who, err := a.actor(ctx, cb.Team.ID, cb.User.ID)
	if err != nil {
		return viewErrors(first, a.refusal(err))
	}
	ctx = incident.Once(ctx, deliveryKey(cb.Team.ID, "view\x00"+cb.View.ID+"\x00"+cb.View.Hash))
	switch cb.View.CallbackID {
	case viewUpdate:
		req := incident.UpdateRequest{Text: value(blockText), By: who}
		if eta := value(blockETA); eta != "" {
			t, err := parseETA(eta, a.now())
			if err != nil {
				return viewErrors(blockETA, a.refusal(err))
			}
			req.ETA = &t
		}
		_, err = a.svc.PostUpdate(ctx, id, req, who)
		if incident.KindOf(err) == incident.Invalid && strings.HasPrefix(err.Error(), "eta") {
			return viewErrors(blockETA, a.refusal(err))
		}
	case viewResolve:
		_, err = a.svc.Resolve(ctx, id, incident.ResolveRequest{Summary: value(blockSum), By: who}, who)
	default:
		return nil
	}
	if err != nil && !errors.Is(err, incident.ErrAlreadyDone) {
		return viewErrors(first, a.refusal(err))
	}
	return nil
}
