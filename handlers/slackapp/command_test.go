package slackapp

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		text string
		want command
	}{
		{"", command{verb: verbHelp}},
		{"help", command{verb: verbHelp}},
		{"declare S1 Checkout returns 500", command{verb: verbDeclare, severity: "S1", text: "Checkout returns 500"}},
		{"declare checkout slow", command{verb: verbDeclare, text: "checkout slow"}},
		{"declare INC-4 is a title", command{verb: verbDeclare, text: "INC-4 is a title"}},
		{"ACK", command{verb: verbAck}},
		{"ack inc-12", command{verb: verbAck, incident: "INC-12"}},
		{"roles <@U1ABC|maria> <@W2DEF>", command{verb: verbRoles, users: []string{"U1ABC", "W2DEF"}}},
		{"roles INC-3 <@U1ABC> <@U2DEF>", command{verb: verbRoles, incident: "INC-3", users: []string{"U1ABC", "U2DEF"}}},
		{"update rolled back the deploy", command{verb: verbUpdate, text: "rolled back the deploy"}},
		{"update rolled back eta 30m", command{verb: verbUpdate, text: "rolled back", eta: "30m"}},
		{"update INC-2 failing over ETA 2026-12-02 15:30", command{verb: verbUpdate, incident: "INC-2", text: "failing over", eta: "2026-12-02 15:30"}},
		{"update the eta is unknown", command{verb: verbUpdate, text: "the", eta: "is unknown"}},
		{"resolve rolled back 2.41.4", command{verb: verbResolve, text: "rolled back 2.41.4"}},
		{"resolve", command{verb: verbResolve}},
		{"sev s1 every checkout fails", command{verb: verbSev, severity: "S1", text: "every checkout fails"}},
		{"sev INC-7 S3 only staff", command{verb: verbSev, incident: "INC-7", severity: "S3", text: "only staff"}},
		{"status INC-9", command{verb: verbStatus, incident: "INC-9"}},
	} {
		got, err := parseCommand("/incident", tc.text)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseCommand(%q) = %+v, %v; want %+v", tc.text, got, err, tc.want)
		}
	}
}

func TestParseCommandRefuses(t *testing.T) {
	for text, says := range map[string]string{
		"reboot":                  `"reboot" is not a command: try ` + "`/incident help`",
		"declare S2":              "title: required",
		"roles @maria @dev":       `roles: "@maria" is not a person`,
		"roles <@U1>":             "roles: mention two people",
		"roles <@U1> <@U2> <@U3>": "roles: mention two people",
		"update":                  "text: required",
		"update eta 30m":          "text: required",
		"sev critical now":        "severity: give S1, S2, S3 or S4",
		"ack now":                 "takes nothing more than an incident id",
	} {
		if _, err := parseCommand("/incident", text); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("parseCommand(%q) = %v, want an error saying %q", text, err, says)
		}
	}
}
