// Package slackapp is Slack as a front door: a slash command (and, over
// the same path, the buttons and modals of an incident's root message)
// turned into calls of the incident service, acting as the Slack user who
// typed or pressed. It answers the person alone with what happened or with
// the service's own refusal. Deliveries arrive over Socket Mode or HTTP
// request URLs; both end in App.
package slackapp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	slackgo "github.com/slack-go/slack"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/store"
)

// Slack is what the app needs of Slack's Web API (integrations/slack.App).
type Slack interface {
	UserName(ctx context.Context, userID string) (string, error)
	ChannelMembers(ctx context.Context, channelID string) ([]string, error)
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
	Ephemeral(ctx context.Context, channelID, threadTS, userID, text string) error
	OpenView(ctx context.Context, triggerID string, view slackgo.ModalViewRequest) error
}

// Config says who may act and how the command is named.
type Config struct {
	// Command is the slash command's name, with its slash (/incident).
	Command string
	// Teams are the workspaces (team IDs) whose users may act; required.
	Teams []string
	// Channels and UserGroups, when set, narrow who may act to the members
	// of one of these channels or user groups.
	Channels   []string
	UserGroups []string
	// MembersTTL is how long a membership list is trusted before it is
	// read again (DefaultMembersTTL when zero).
	MembersTTL time.Duration
}

// DefaultMembersTTL is how long channel and group members are cached.
const DefaultMembersTTL = 5 * time.Minute

// App acts on Slack deliveries through the incident service.
type App struct {
	cfg   Config
	svc   *incident.Service
	slack Slack
	log   zerolog.Logger
	now   func() time.Time

	mu      sync.Mutex
	names   map[string]string // user ID -> name, read once
	members map[string]membership
}

type membership struct {
	ids  []string
	read time.Time
}

// New builds the app.
func New(cfg Config, svc *incident.Service, slack Slack, log zerolog.Logger, now func() time.Time) *App {
	if cfg.Command == "" {
		cfg.Command = "/incident"
	}
	if cfg.MembersTTL <= 0 {
		cfg.MembersTTL = DefaultMembersTTL
	}
	if now == nil {
		now = time.Now
	}
	return &App{cfg: cfg, svc: svc, slack: slack, log: log, now: now, names: map[string]string{}, members: map[string]membership{}}
}

// Command acts on one slash command and returns what the person is told
// (only they see it); "" when the command was a re-delivery of one acted
// on before.
func (a *App) Command(ctx context.Context, sc slackgo.SlashCommand) string {
	who, err := a.actor(ctx, sc.TeamID, sc.UserID)
	if err != nil {
		return a.refusal(err)
	}
	c, err := parseCommand(a.cfg.Command, sc.Text)
	if err != nil {
		return err.Error()
	}
	ctx = incident.Once(ctx, deliveryKey(sc.TeamID, sc.TriggerID))
	reply, err := a.run(ctx, c, sc.ChannelID, who)
	if errors.Is(err, incident.ErrAlreadyDone) {
		return ""
	}
	if err != nil {
		return a.refusal(err)
	}
	return reply
}

// deliveryKey marks the actions of one interaction, which Slack may
// deliver again: its trigger, unique per interaction.
func deliveryKey(teamID, triggerID string) string {
	if triggerID == "" {
		return ""
	}
	return "\x00slack\x00" + teamID + "\x00" + triggerID
}

// refused is a refusal of the Slack front door itself (who may act, which
// incident).
type refused struct{ msg string }

func (r *refused) Error() string { return r.msg }

// refusal is what a person is told when their action did not happen.
func (a *App) refusal(err error) string {
	var r *refused
	switch {
	case errors.As(err, &r):
		return r.msg
	case incident.KindOf(err) != 0:
		return "Not done: " + err.Error()
	case errors.Is(err, store.ErrBusy), errors.Is(err, store.ErrUnavailable):
		return "Not done: Responder cannot write right now (" + err.Error() + "); try again in a moment."
	}
	a.log.Error().Err(err).Msg("slack action failed")
	return "Not done: Responder failed to act (the error is in its log); try again, or use the incident's page."
}

// actor checks that the user may act and returns their name as the
// timeline records it ("Maria Schulz (Slack)").
func (a *App) actor(ctx context.Context, teamID, userID string) (string, error) {
	if !slices.Contains(a.cfg.Teams, teamID) {
		return "", &refused{"Not done: this Slack workspace is not allowed to act on Responder's incidents (slack.interactivity.allowed_teams)."}
	}
	if len(a.cfg.Channels) > 0 || len(a.cfg.UserGroups) > 0 {
		ok, err := a.member(ctx, userID)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", &refused{fmt.Sprintf("Not done: only members of %s may act on incidents from Slack.", a.allowedWho())}
		}
	}
	name, err := a.userName(ctx, userID)
	if err != nil {
		return "", err
	}
	return name + " (Slack)", nil
}

func (a *App) allowedWho() string {
	var parts []string
	for _, c := range a.cfg.Channels {
		parts = append(parts, "<#"+c+">")
	}
	for _, g := range a.cfg.UserGroups {
		parts = append(parts, "<!subteam^"+g+">")
	}
	return strings.Join(parts, " or ")
}

// userName is the user's name, read from Slack once.
func (a *App) userName(ctx context.Context, userID string) (string, error) {
	a.mu.Lock()
	name, ok := a.names[userID]
	a.mu.Unlock()
	if ok {
		return name, nil
	}
	name, err := a.slack.UserName(ctx, userID)
	if err != nil {
		return "", fmt.Errorf("who is %s: %w", userID, err)
	}
	a.mu.Lock()
	a.names[userID] = name
	a.mu.Unlock()
	return name, nil
}

// member reports whether the user is in one of the allowed channels or
// user groups, read at most once per MembersTTL each.
func (a *App) member(ctx context.Context, userID string) (bool, error) {
	for _, c := range a.cfg.Channels {
		ids, err := a.membersOf(ctx, "channel:"+c, func(ctx context.Context) ([]string, error) { return a.slack.ChannelMembers(ctx, c) })
		if err != nil {
			return false, err
		}
		if slices.Contains(ids, userID) {
			return true, nil
		}
	}
	for _, g := range a.cfg.UserGroups {
		ids, err := a.membersOf(ctx, "group:"+g, func(ctx context.Context) ([]string, error) { return a.slack.GroupMembers(ctx, g) })
		if err != nil {
			return false, err
		}
		if slices.Contains(ids, userID) {
			return true, nil
		}
	}
	return false, nil
}

func (a *App) membersOf(ctx context.Context, key string, read func(context.Context) ([]string, error)) ([]string, error) {
	now := a.now()
	a.mu.Lock()
	m, ok := a.members[key]
	a.mu.Unlock()
	if ok && now.Sub(m.read) < a.cfg.MembersTTL {
		return m.ids, nil
	}
	ids, err := read(ctx)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", key, err)
	}
	a.mu.Lock()
	a.members[key] = membership{ids: ids, read: now}
	a.mu.Unlock()
	return ids, nil
}

// incidentOf is the incident a command is about: the one it names, else
// the one open incident of the channel it was typed in.
func (a *App) incidentOf(ctx context.Context, c command, channelID string) (string, error) {
	if c.incident != "" {
		return c.incident, nil
	}
	open, err := a.svc.InChannel(ctx, channelID)
	if err != nil {
		return "", err
	}
	switch len(open) {
	case 0:
		return "", &refused{fmt.Sprintf("No open incident has its thread in this channel: name one (`%s %s INC-42 ...`).", a.cfg.Command, c.verb)}
	case 1:
		return open[0].ID, nil
	}
	ids := make([]string, 0, len(open))
	for _, inc := range open {
		ids = append(ids, inc.ID)
	}
	return "", &refused{fmt.Sprintf("This channel has %d open incidents (%s): name one (`%s %s %s ...`).", len(open), strings.Join(ids, ", "),
		a.cfg.Command, c.verb, ids[0])}
}

// run carries out a parsed command as who, typed in channelID.
func (a *App) run(ctx context.Context, c command, channelID, who string) (string, error) {
	if c.verb == verbHelp {
		return usage(a.cfg.Command), nil
	}
	if c.verb == verbDeclare {
		sev := c.severity
		if sev == "" {
			sev = "S3"
		}
		v, _, err := a.svc.Declare(ctx, incident.DeclareRequest{Title: c.text, Severity: sev, DeclaredBy: who}, who, incident.Idempotency{})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Declared %s (%s): %s. %s", v.ID, v.Severity, v.Title, incident.URL(a.svc.ExternalURL(), v.ID)), nil
	}
	id, err := a.incidentOf(ctx, c, channelID)
	if err != nil {
		return "", err
	}
	var v *incident.View
	switch c.verb {
	case verbAck:
		v, err = a.svc.Acknowledge(ctx, id, incident.AckRequest{By: who}, who)
	case verbRoles:
		var recovery, comms string
		if recovery, err = a.userName(ctx, c.users[0]); err != nil {
			return "", err
		}
		if comms, err = a.userName(ctx, c.users[1]); err != nil {
			return "", err
		}
		v, err = a.svc.SetRoles(ctx, id, incident.RolesRequest{RecoveryLead: &recovery, CommsLead: &comms, By: who}, who)
	case verbUpdate:
		req := incident.UpdateRequest{Text: c.text, By: who}
		if c.eta != "" {
			eta, perr := parseETA(c.eta, a.now())
			if perr != nil {
				return "", perr
			}
			req.ETA = &eta
		}
		v, err = a.svc.PostUpdate(ctx, id, req, who)
	case verbResolve:
		v, err = a.svc.Resolve(ctx, id, incident.ResolveRequest{Summary: c.text, By: who}, who)
	case verbSev:
		v, err = a.svc.SetSeverity(ctx, id, incident.SeverityRequest{Severity: c.severity, Reason: c.text, By: who}, who)
	case verbStatus:
		v, err = a.svc.Get(ctx, id)
	}
	if err != nil {
		return "", err
	}
	return a.status(v, c.verb), nil
}

// status says where an incident stands after a command.
func (a *App) status(v *incident.View, verb string) string {
	lead := func(name string) string {
		if name == "" {
			return "nobody"
		}
		return name
	}
	var b strings.Builder
	if verb != verbStatus {
		fmt.Fprintf(&b, "Done. ")
	}
	fmt.Fprintf(&b, "%s (%s, %s): %s\n", v.ID, v.Severity, v.Status, v.Title)
	fmt.Fprintf(&b, "Recovery lead %s, comms lead %s", lead(v.Roles.RecoveryLead), lead(v.Roles.CommsLead))
	if v.ETA != nil {
		fmt.Fprintf(&b, ", ETA %s", v.ETA.UTC().Format("2006-01-02 15:04 UTC"))
	}
	for _, st := range v.Checklist {
		if st.State == store.StepOpen {
			fmt.Fprintf(&b, "\nNext step: %s (%s)", st.Text, st.ID)
			break
		}
	}
	fmt.Fprintf(&b, "\n%s", incident.URL(a.svc.ExternalURL(), v.ID))
	return b.String()
}

// parseETA reads an update's ETA: a duration from now (30m, 1h30m), a
// UTC time (2026-12-02 15:30, 2026-12-02T15:30) or RFC 3339.
func parseETA(text string, now time.Time) (time.Time, error) {
	text = strings.TrimSpace(text)
	if d, err := time.ParseDuration(text); err == nil {
		if d <= 0 {
			return time.Time{}, &refused{fmt.Sprintf("Not done: eta: %q is not ahead: give how long from now (30m, 2h).", text)}
		}
		return now.Add(d).UTC().Truncate(time.Minute), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, text, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, &refused{fmt.Sprintf("Not done: eta: %q is not a time: give 30m, 2h, or a UTC time like 2026-12-02 15:30.", text)}
}
