package incident

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// Stored post-mortems: the draft built from the record is saved when an
// incident that owes one resolves; people edit it (every version kept, with
// who and why) and the review meeting marks it reviewed. Its action items
// section is bound to the incident's real action items.

// MaxPostmortem bounds one version of a post-mortem.
const MaxPostmortem = 256 << 10

// The markers around the action items section of a post-mortem: what lies
// between them is replaced by the incident's action items whenever the
// post-mortem is shown.
const (
	actionsBegin = "<!-- responder:action-items: this list shows the incident's action items; change them on its page or through the API -->"
	actionsEnd   = "<!-- /responder:action-items -->"
)

// actionItemsSection is the bound action items section: the markers and
// one checklist line per item.
func actionItemsSection(items []store.ActionItem) string {
	var b strings.Builder
	b.WriteString(actionsBegin + "\n")
	if len(items) == 0 {
		b.WriteString("_None yet: add them on the incident's page or with POST /api/v1/incidents/ID/action-items._\n")
	}
	for _, a := range items {
		box := " "
		if a.State != store.ActionOpen {
			box = "x"
		}
		line := fmt.Sprintf("- [%s] **%s** %s — %s", box, a.ID, inline(a.Title), inline(a.Owner))
		if a.Due != "" {
			line += ", due " + a.Due
		}
		switch a.State {
		case store.ActionDone:
			line += " (done)"
		case store.ActionWontDo:
			line += " (won't do: " + inline(a.Reason) + ")"
		}
		if a.Link != "" {
			line += " — " + a.Link
		}
		b.WriteString(line + "\n")
	}
	b.WriteString(actionsEnd)
	return b.String()
}

// bindActionItems replaces the action items section of md (between its
// markers) with items as they are now; md without the markers is kept as
// it is.
func bindActionItems(md string, items []store.ActionItem) string {
	begin := strings.Index(md, actionsBegin)
	if begin < 0 {
		return md
	}
	end := strings.Index(md[begin:], actionsEnd)
	if end < 0 {
		return md
	}
	end += begin + len(actionsEnd)
	return md[:begin] + actionItemsSection(items) + md[end:]
}

// PostmortemSummary is a stored post-mortem without its text: its state,
// version, who edited and who reviewed it.
type PostmortemSummary struct {
	store.Postmortem
	// Markdown stands for the stored text in the JSON, always empty: the
	// text is served as Markdown on its own.
	Markdown string `json:"markdown,omitempty"`
}

// PostmortemState is a stored post-mortem's summary with the list of its
// versions.
type PostmortemState struct {
	PostmortemSummary
	Versions []PostmortemVersionInfo `json:"versions"`
}

// PostmortemVersionInfo is one kept version, without its text.
type PostmortemVersionInfo struct {
	Version int    `json:"version"`
	By      string `json:"by"`
	At      string `json:"at"`
	Note    string `json:"note,omitempty"`
	Bytes   int    `json:"bytes"`
}

// savePostmortemDraft stores the draft as version 1, owed, when the
// incident owes a post-mortem and none is stored yet.
func (ch *change) savePostmortemDraft() error {
	if !ch.inc.PostmortemRequired {
		return nil
	}
	if _, err := ch.tx.Postmortem(ch.inc.ID); !errors.Is(err, store.ErrNotFound) {
		return err // stored already (a resolve after a reopen), or a read error
	}
	items, err := ch.tx.ActionItems(store.ActionFilter{Incident: ch.inc.ID})
	if err != nil {
		return err
	}
	if err := ch.flushChecklist(); err != nil {
		return err
	}
	md, err := ch.s.draft(ch.tx, ch.inc, items, ch.now)
	if err != nil {
		return err
	}
	return ch.savePostmortem(&store.Postmortem{IncidentID: ch.inc.ID, State: store.PostmortemOwed}, string(md), "responder",
		"the draft made from the record at resolution")
}

// savePostmortem keeps md as the next version of p, by by, and stores p.
func (ch *change) savePostmortem(p *store.Postmortem, md, by, note string) error {
	t := ch.now
	p.Version++
	p.Markdown, p.EditedBy, p.EditedAt = md, by, &t
	if err := ch.tx.AddPostmortemVersion(ch.inc.ID, store.PostmortemVersion{Version: p.Version, Markdown: md, By: by, At: t, Note: note}); err != nil {
		return err
	}
	return ch.tx.PutPostmortem(p)
}

// PostmortemEdit saves a new version of an incident's post-mortem.
// Version is the version the text was edited from (0 when none was
// stored): an edit of an older one is refused, so that nobody overwrites
// another's edit unseen.
type PostmortemEdit struct {
	Markdown string `json:"markdown"`
	Version  *int   `json:"version"`
	Note     string `json:"note"`
	By       string `json:"by"`
}

// EditPostmortem saves req.Markdown as the next version of the incident
// id's post-mortem: it is drafted now (an edit after the review asks for
// another review).
func (s *Service) EditPostmortem(ctx context.Context, id string, req PostmortemEdit, actor string) (*PostmortemState, error) {
	if err := CheckText("markdown", req.Markdown, MaxPostmortem, true); err != nil {
		return nil, err
	}
	if req.Version == nil {
		return nil, invalid("version", "required: the version you edited (0 when none was saved), so that another's edit is not lost")
	}
	if err := CheckText("note", req.Note, MaxTitle, false); err != nil {
		return nil, err
	}
	by, err := who("by", req.By, actor)
	if err != nil {
		return nil, err
	}
	md := strings.ReplaceAll(req.Markdown, "\r\n", "\n")
	note := strings.TrimSpace(req.Note)
	return s.changePostmortem(ctx, id, func(ch *change, p *store.Postmortem) error {
		if *req.Version != p.Version {
			return conflict("the post-mortem of %s is at version %d (saved by %s); you edited version %d: reload it and apply your change again",
				ch.inc.ID, p.Version, orNobody(p.EditedBy), *req.Version)
		}
		if p.Markdown == md {
			return conflict("the post-mortem of %s is already this text (version %d)", ch.inc.ID, p.Version)
		}
		p.State, p.ReviewedBy, p.ReviewedAt = store.PostmortemDrafted, "", nil
		if err := ch.savePostmortem(p, md, by, note); err != nil {
			return err
		}
		text := fmt.Sprintf("post-mortem version %d saved by %s", p.Version, by)
		if note != "" {
			text += ": " + note
		}
		return ch.announce(integrations.EventNote, store.KindPostmortem, text, by)
	})
}

// ReviewRequest marks a post-mortem reviewed.
type ReviewRequest struct {
	By   string `json:"by"`
	Note string `json:"note"`
}

// ReviewPostmortem marks the incident id's post-mortem reviewed by a
// person: it must be drafted (a person saved a version since the draft
// made at resolution, or since the last review).
func (s *Service) ReviewPostmortem(ctx context.Context, id string, req ReviewRequest, actor string) (*PostmortemState, error) {
	if err := CheckText("note", req.Note, MaxText, false); err != nil {
		return nil, err
	}
	by, err := who("by", req.By, actor)
	if err != nil {
		return nil, err
	}
	return s.changePostmortem(ctx, id, func(ch *change, p *store.Postmortem) error {
		switch p.State {
		case store.PostmortemReviewed:
			return conflict("the post-mortem of %s was reviewed by %s already (version %d)", ch.inc.ID, p.ReviewedBy, p.Version)
		case store.PostmortemDrafted:
		default:
			return conflict("the post-mortem of %s is %s: nobody has written it yet (save a version first)", ch.inc.ID, orNone(p.State))
		}
		t := ch.now
		p.State, p.ReviewedBy, p.ReviewedAt = store.PostmortemReviewed, by, &t
		if err := ch.tx.PutPostmortem(p); err != nil {
			return err
		}
		text := fmt.Sprintf("post-mortem version %d reviewed by %s", p.Version, by)
		if note := strings.TrimSpace(req.Note); note != "" {
			text += ": " + note
		}
		return ch.announce(integrations.EventNote, store.KindPostmortem, text, by)
	})
}

func orNone(state string) string {
	if state == "" {
		return "not started"
	}
	return state
}

// changePostmortem runs fn on the incident id's stored post-mortem (a new,
// empty one when none is stored) in one write, and returns its state.
func (s *Service) changePostmortem(ctx context.Context, id string, fn func(ch *change, p *store.Postmortem) error) (*PostmortemState, error) {
	var out *PostmortemState
	_, err := s.changeIncident(ctx, id, func(ch *change) error {
		p, err := ch.tx.Postmortem(ch.inc.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			p = &store.Postmortem{IncidentID: ch.inc.ID}
		case err != nil:
			return err
		}
		if err := fn(ch, p); err != nil {
			return err
		}
		out, err = postmortemState(ch.tx, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func postmortemState(tx store.Tx, p *store.Postmortem) (*PostmortemState, error) {
	vs, err := tx.PostmortemVersions(p.IncidentID)
	if err != nil {
		return nil, err
	}
	st := &PostmortemState{PostmortemSummary: PostmortemSummary{Postmortem: *p}, Versions: []PostmortemVersionInfo{}}
	for _, v := range vs {
		st.Versions = append(st.Versions, PostmortemVersionInfo{Version: v.Version, By: v.By, At: v.At.UTC().Format(timeFormat), Note: v.Note,
			Bytes: len(v.Markdown)})
	}
	return st, nil
}

// PostmortemStateOf is the incident id's stored post-mortem without its
// text, with its versions; NotFound when none is stored.
func (s *Service) PostmortemStateOf(ctx context.Context, id string) (*PostmortemState, error) {
	var out *PostmortemState
	err := s.store.View(ctx, func(tx store.Tx) error {
		inc, err := tx.Incident(id)
		if err != nil {
			return unknownIncident(id, err)
		}
		p, err := tx.Postmortem(inc.ID)
		if errors.Is(err, store.ErrNotFound) {
			return &Error{Kind: NotFound, Msg: fmt.Sprintf("%s has no stored post-mortem: one is saved when an incident that owes one resolves, or when a person saves one", inc.ID)}
		}
		if err != nil {
			return err
		}
		out, err = postmortemState(tx, p)
		return err
	})
	return out, err
}

// PostmortemVersion is the text of one kept version of the incident id's
// post-mortem, as it was saved.
func (s *Service) PostmortemVersion(ctx context.Context, id string, version int) ([]byte, error) {
	var md []byte
	err := s.store.View(ctx, func(tx store.Tx) error {
		inc, err := tx.Incident(id)
		if err != nil {
			return unknownIncident(id, err)
		}
		vs, err := tx.PostmortemVersions(inc.ID)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if v.Version == version {
				md = []byte(v.Markdown)
				return nil
			}
		}
		return &Error{Kind: NotFound, Msg: fmt.Sprintf("the post-mortem of %s has no version %d (it has %d)", inc.ID, version, len(vs))}
	})
	return md, err
}
