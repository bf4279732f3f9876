package bolt

import (
	"reflect"
	"testing"
	"time"

	"github.com/responder-sre/responder/store"
)

// fill sets every field of v (a struct) to a value that is not zero,
// through pointers and into maps, so that a copy can be checked for
// sharing.
func fill(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint64:
		v.SetUint(7)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("k").Convert(v.Type().Key()), reflect.ValueOf("v").Convert(v.Type().Elem()))
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	default:
		t.Fatalf("%s: a %s field: teach cloneIncident (and this test) to copy it", path, v.Kind())
	}
}

// shares reports the first reference held by both a and b.
func shares(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if !a.IsNil() && a.UnsafePointer() == b.UnsafePointer() {
			return path
		}
		if a.Kind() == reflect.Pointer && !a.IsNil() {
			return shares(a.Elem(), b.Elem(), path)
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if p := shares(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
				return p
			}
		}
	}
	return ""
}

// A copy from the writer's cache must be the incident, and share nothing
// with it: callers change what they read. A field added to store.Incident
// of a kind cloneIncident does not copy fails here.
func TestCloneIncidentSharesNothing(t *testing.T) {
	var inc store.Incident
	fill(t, reflect.ValueOf(&inc).Elem(), "Incident")
	c := cloneIncident(&inc)
	if !reflect.DeepEqual(c, &inc) {
		t.Fatalf("the copy differs:\n%+v\n%+v", c, inc)
	}
	if p := shares(reflect.ValueOf(inc), reflect.ValueOf(*c), "Incident"); p != "" {
		t.Errorf("%s is shared by the copy", p)
	}
}
