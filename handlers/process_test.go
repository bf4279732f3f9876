package handlers

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

func TestRolesAndUpdates(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true))
	id := e.postAM(readTestdata(t, "am_firing_old.json"))[0].ID // S3: announced on Slack

	r := e.do(http.MethodPut, "/api/v1/incidents/"+id+"/roles", tokWrite, []byte(`{"recovery_lead":"maria","comms_lead":"Maria "}`))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.errorText(t), "must be different people") {
		t.Fatalf("same person for both roles: %d %s, want 422 saying why", r.status, r.body)
	}
	r = e.do(http.MethodPut, "/api/v1/incidents/"+id+"/roles", tokWrite, []byte(`{"recovery_lead":"maria","comms_lead":"dev","by":"lead"}`))
	if r.status != http.StatusOK {
		t.Fatalf("roles: %d %s", r.status, r.body)
	}
	var got view
	r.json(t, &got)
	if got.Roles.RecoveryLead != "maria" || got.Roles.CommsLead != "dev" || got.RolesAssignedAt == nil {
		t.Errorf("roles %+v assigned at %v", got.Roles, got.RolesAssignedAt)
	}
	// One role alone keeps the other; giving the comms lead the recovery
	// lead's name is refused.
	if r := e.do(http.MethodPut, "/api/v1/incidents/"+id+"/roles", tokWrite, []byte(`{"comms_lead":"maria"}`)); r.status != http.StatusUnprocessableEntity {
		t.Errorf("comms lead = recovery lead: %d, want 422", r.status)
	}

	e.advance(10 * time.Minute)
	eta := e.clock().Add(2 * time.Hour).Format(time.RFC3339)
	r = e.do(http.MethodPost, "/api/v1/incidents/"+id+"/updates", tokWrite, []byte(`{"text":"failing over to the replica","eta":"`+eta+`","by":"dev"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	r.json(t, &got)
	if got.ETA == nil || got.ETA.Format(time.RFC3339) != eta || got.LastUpdateAt == nil || got.FirstUpdateAt == nil {
		t.Errorf("eta %v last update %v first %v", got.ETA, got.LastUpdateAt, got.FirstUpdateAt)
	}
	last := got.Timeline[len(got.Timeline)-1]
	if last.Kind != store.KindUpdate || last.By != "dev" || last.ETA == nil || last.Text != "failing over to the replica" {
		t.Errorf("last timeline entry %+v", last)
	}
	tests := []struct{ body, want string }{
		{`{"eta":"` + eta + `","by":"dev"}`, "text: required"},
		{`{"text":"x","eta":"2020-01-01T00:00:00Z","by":"dev"}`, "eta: 2020-01-01T00:00:00Z is not in the future"},
		{`{"text":"x","eta":"soon","by":"dev"}`, `eta: "soon" is not a time: give one like`},
	}
	for _, tc := range tests {
		if r := e.do(http.MethodPost, "/api/v1/incidents/"+id+"/updates", tokWrite, []byte(tc.body)); r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), tc.want) {
			t.Errorf("update %s: %d %s, want 400 %q", tc.body, r.status, r.body, tc.want)
		}
	}

	e.flush()
	roots := v.slack.Messages("incidents")
	if len(roots) != 1 || len(roots[0].Replies) != 2 {
		t.Fatalf("roots %+v, want the root with replies for the roles and the update", roots)
	}
	if !strings.Contains(roots[0].Replies[0].Text, "recovery lead maria, comms lead dev") || !strings.Contains(roots[0].Replies[1].Text, "failing over to the replica") {
		t.Errorf("replies %q / %q", roots[0].Replies[0].Text, roots[0].Replies[1].Text)
	}

	e.do(http.MethodPost, "/api/v1/incidents/"+id+"/resolve", tokWrite, []byte(`{"by":"maria"}`))
	if r := e.do(http.MethodPut, "/api/v1/incidents/"+id+"/roles", tokWrite, []byte(`{"comms_lead":"sam"}`)); r.status != http.StatusConflict {
		t.Errorf("roles after resolution: %d, want 409", r.status)
	}
	if r := e.do(http.MethodPost, "/api/v1/incidents/"+id+"/updates", tokWrite, []byte(`{"text":"x","by":"dev"}`)); r.status != http.StatusConflict {
		t.Errorf("update after resolution: %d, want 409", r.status)
	}
}

func withScenario() envOption {
	return func(s envSetup) {
		s.inc.Scenarios = map[string]incident.Scenario{"database-failover": {
			Title: "Primary database unreachable", Severity: policy.S1,
			Labels: map[string]string{"service": "database"}, Description: "fail over",
		}}
	}
}

// A drill runs the whole process out of hours with every message marked
// [DRILL], and pages nobody.
func TestDrill(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, false), withScenario())
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"scenario":"volcano","by":"maria"}`, http.StatusUnprocessableEntity},
		{`{"by":"maria"}`, http.StatusBadRequest},
		{`{"scenario":"database-failover","severity":"S9","by":"maria"}`, http.StatusBadRequest},
	} {
		if r := e.do(http.MethodPost, "/api/v1/drills", tokWrite, []byte(tc.body)); r.status != tc.status {
			t.Errorf("drill %s: %d %s, want %d", tc.body, r.status, r.body, tc.status)
		}
	}
	r := e.do(http.MethodPost, "/api/v1/drills", tokWrite, []byte(`{"scenario":"database-failover","by":"maria"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("drill: %d %s", r.status, r.body)
	}
	var d view
	r.json(t, &d)
	if !d.Drill || d.Source != store.SourceDrill || d.Severity != "S1" || d.Scenario != "database-failover" || !d.OutOfHours {
		t.Errorf("drill incident %+v", d.Incident)
	}
	e.advance(2 * time.Minute)
	e.do(http.MethodPost, "/api/v1/incidents/"+d.ID+"/ack", tokWrite, []byte(`{"by":"maria"}`))
	e.do(http.MethodPut, "/api/v1/incidents/"+d.ID+"/roles", tokWrite, []byte(`{"recovery_lead":"maria","comms_lead":"dev"}`))
	e.do(http.MethodPost, "/api/v1/incidents/"+d.ID+"/resolve", tokWrite, []byte(`{"by":"maria"}`))
	e.flush()

	if n := len(v.og.Requests()); n != 0 {
		t.Errorf("a drill reached OpsGenie out of hours (%d requests)", n)
	}
	roots := v.slack.Messages("sev1")
	if len(roots) != 1 {
		t.Fatalf("%d Slack roots, want 1", len(roots))
	}
	messages := []string{string(roots[0].Blocks)}
	for _, rep := range roots[0].Replies {
		messages = append(messages, rep.Text)
	}
	for i, m := range messages {
		if !strings.Contains(m, "[DRILL]") {
			t.Errorf("Slack message %d lacks [DRILL]: %.200s", i, m)
		}
	}
	mails := v.smtp.Messages()
	if len(mails) == 0 {
		t.Fatal("no mail for an S1 drill")
	}
	for _, m := range mails {
		if !strings.Contains(m.Header.Get("Subject"), "[DRILL]") {
			t.Errorf("mail subject %q lacks [DRILL]", m.Header.Get("Subject"))
		}
	}
}

// Customer impact from an alert label: customer engineering is told once,
// on their channel and their list, even as more such alerts join.
func TestCustomerImpactFromLabel(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true))
	id := e.postAM(readTestdata(t, "am_firing_old.json"))[0].ID
	for i, fp := range []string{"00000000000000c1", "00000000000000c2"} {
		e.postAM(amPayload(t, "am_firing_old.json", func(m *incident.AlertmanagerWebhook) {
			m.Alerts[0].Fingerprint = fp
			m.Alerts[0].Labels = map[string]string{"alertname": "DiskFillingUp", "severity": "warning", "customer_impact": "true", "instance": fp}
		}))
		if inc := e.incident(id); !inc.CustomerImpact {
			t.Fatalf("after labelled alert %d: customer_impact false", i+1)
		}
	}
	e.flush()
	if n := len(v.slack.Messages("customer-eng")); n != 1 {
		t.Errorf("%d messages to customer engineering's channel, want 1", n)
	}
	toCE := 0
	for _, m := range v.smtp.Messages() {
		if len(m.To) == 1 && m.To[0] == "ce@example.com" {
			toCE++
		}
	}
	if toCE != 1 {
		t.Errorf("%d mails to customer engineering, want 1", toCE)
	}
}
