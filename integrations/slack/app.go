package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// maxPages bounds the pages of one list read from Slack.
const maxPages = 50

// App is what Slack as a front door needs of the Web API besides posting:
// who a user is, who is in a channel or a user group, a modal, and a
// message only one person sees. It uses the bot token of Config.
type App struct {
	api *slackgo.Client
}

// NewApp checks cfg and builds the client. It makes no network call.
func NewApp(cfg Config) (*App, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if err := errors.Join(checkToken(cfg.Token), checkAPIURL(cfg.APIURL)); err != nil {
		return nil, fmt.Errorf("slack config: %w", err)
	}
	return &App{api: client(cfg)}, nil
}

// UserName is how a user is named in Responder: the display name, else the
// real name, else the user name (users.info).
func (a *App) UserName(ctx context.Context, userID string) (string, error) {
	ctx, ans := withAnswer(ctx)
	u, err := a.api.GetUserInfoContext(ctx, userID)
	if err != nil {
		return "", classify("slack users.info", err, ans)
	}
	for _, name := range []string{u.Profile.DisplayName, u.RealName, u.Profile.RealName, u.Name} {
		if name != "" {
			return name, nil
		}
	}
	return userID, nil
}

// ChannelMembers lists the user IDs in a channel (conversations.members,
// every page).
func (a *App) ChannelMembers(ctx context.Context, channelID string) ([]string, error) {
	var out []string
	cursor := ""
	for range maxPages {
		actx, ans := withAnswer(ctx)
		ids, next, err := a.api.GetUsersInConversationContext(actx, &slackgo.GetUsersInConversationParameters{ChannelID: channelID, Cursor: cursor, Limit: 1000})
		if err != nil {
			return nil, classify("slack conversations.members", err, ans)
		}
		out = append(out, ids...)
		if next == "" {
			return out, nil
		}
		cursor = next
	}
	return out, fmt.Errorf("slack conversations.members of %s: more than %d pages", channelID, maxPages)
}

// GroupMembers lists the user IDs in a user group (usergroups.users.list).
func (a *App) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	ctx, ans := withAnswer(ctx)
	ids, err := a.api.GetUserGroupMembersContext(ctx, groupID)
	if err != nil {
		return nil, classify("slack usergroups.users.list", err, ans)
	}
	return ids, nil
}

// Ephemeral posts text that only userID sees, in the channel (and thread,
// when threadTS is set) where they acted.
func (a *App) Ephemeral(ctx context.Context, channelID, threadTS, userID, text string) error {
	opts := []slackgo.MsgOption{slackgo.MsgOptionText(text, false)}
	if threadTS != "" {
		opts = append(opts, slackgo.MsgOptionTS(threadTS))
	}
	ctx, ans := withAnswer(ctx)
	if _, err := a.api.PostEphemeralContext(ctx, channelID, userID, opts...); err != nil {
		return classify("slack chat.postEphemeral", err, ans)
	}
	return nil
}

// OpenView opens a modal for the person whose interaction gave triggerID
// (valid for 3 seconds).
func (a *App) OpenView(ctx context.Context, triggerID string, view slackgo.ModalViewRequest) error {
	ctx, ans := withAnswer(ctx)
	if _, err := a.api.OpenViewContext(ctx, triggerID, view); err != nil {
		return classify("slack views.open", err, ans)
	}
	return nil
}

// NewSocket builds a Socket Mode client: it opens the connection with the
// app-level token (xapp-) through apps.connections.open, reconnects by
// itself, and posts with cfg's bot token. It makes no network call until
// run.
func NewSocket(cfg Config, appToken string) (*socketmode.Client, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	problems := []error{checkToken(cfg.Token), checkAPIURL(cfg.APIURL)}
	switch {
	case appToken == "":
		problems = append(problems, errors.New("app_token is empty: Socket Mode needs the app-level token (xapp-) with connections:write"))
	case !strings.HasPrefix(appToken, "xapp-"):
		problems = append(problems, errors.New("app_token is not an app-level token (xapp-...)"))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("slack config: %w", err)
	}
	api := client(cfg)
	slackgo.OptionAppLevelToken(appToken)(api)
	return socketmode.New(api, socketmode.OptionLog(discardLog{})), nil
}

// discardLog silences slack-go's own logger: the front door logs what it
// needs through zerolog, and slack-go's lines could carry a payload.
type discardLog struct{}

func (discardLog) Output(int, string) error { return nil }
