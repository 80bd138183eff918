package domain_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

func TestAdminScopeGrantsEverythingAndSessionsOnlySessions(t *testing.T) {
	for _, tc := range []struct {
		scopes domain.Labels
		need   string
		want   bool
	}{
		{domain.Labels{"sessions"}, domain.ScopeSessions, true},
		{domain.Labels{"sessions"}, domain.ScopeAdmin, false},
		{domain.Labels{"admin"}, domain.ScopeSessions, true},
		{domain.Labels{"admin"}, domain.ScopeAdmin, true},
		{domain.Labels{"sessions", "admin"}, domain.ScopeAdmin, true},
	} {
		if got := (domain.APIKey{Scopes: tc.scopes}).Grants(tc.need); got != tc.want {
			t.Errorf("a key with %v grants %s: %v, want %v", tc.scopes, tc.need, got, tc.want)
		}
	}
}

func TestAPIKeyExpiresAtItsExpiryAndItsUseIsRecordedOncePerMinute(t *testing.T) {
	now := time.Date(2030, 1, 31, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	for _, tc := range []struct {
		name            string
		expiresAt       *time.Time
		lastUsedAt      *time.Time
		expired, record bool
	}{
		{"never expires, never used", nil, nil, false, true},
		{"expires later, used just now", at(time.Hour), at(-59 * time.Second), false, false},
		{"expires now, used a minute ago", at(0), at(-time.Minute), true, true},
		{"expired, used long ago", at(-time.Second), at(-time.Hour), true, true},
	} {
		k := domain.APIKey{ExpiresAt: tc.expiresAt, LastUsedAt: tc.lastUsedAt}
		if got := k.Expired(now); got != tc.expired {
			t.Errorf("%s: Expired = %v, want %v", tc.name, got, tc.expired)
		}
		if got := k.UseWorthRecording(now); got != tc.record {
			t.Errorf("%s: UseWorthRecording = %v, want %v", tc.name, got, tc.record)
		}
	}
}

func TestAPIKeySecretIsRecognisedAndHashed(t *testing.T) {
	secret := domain.APIKeySecret(bytes.Repeat([]byte{0xfb}, domain.APIKeySecretBytes))
	// base64url, unpadded: the bytes 0xfb 0xfb 0xfb are "-_v7".
	if want := "grk_" + strings.Repeat("-_v7", 10) + "-_s"; secret != want {
		t.Errorf("secret %q, want %q", secret, want)
	}
	if !domain.IsAPIKeySecret(secret) || domain.APIKeyPrefix(secret) != "grk_-_v7-_v7" {
		t.Errorf("%q: IsAPIKeySecret %v, prefix %q", secret, domain.IsAPIKeySecret(secret), domain.APIKeyPrefix(secret))
	}
	for _, token := range []string{"", "grk_", secret[:len(secret)-1], secret + "A", "grx_" + secret[4:], "test-token"} {
		if domain.IsAPIKeySecret(token) {
			t.Errorf("%q is taken for a secret", token)
		}
	}
	if h := domain.HashAPIKeySecret(secret); len(h) != 32 || bytes.Equal(h, domain.HashAPIKeySecret(secret[:len(secret)-1]+"A")) {
		t.Errorf("hash %x: not 32 bytes, or the same for another secret", h)
	}
}

func TestAPIKeyCreateNamesTheOffendingField(t *testing.T) {
	now := time.Date(2030, 1, 31, 12, 0, 0, 0, time.UTC)
	scopes := func(s ...string) domain.Optional[[]string] { return domain.Some(s) }
	for _, tc := range []struct {
		name string
		in   domain.APIKeyCreate
		want string // the first field named; "" for none
	}{
		{"valid", domain.APIKeyCreate{Name: domain.Some("kiosk"), Scopes: scopes("sessions")}, ""},
		{"expired an hour ago, in another zone", domain.APIKeyCreate{Name: domain.Some("kiosk"), Scopes: scopes("admin"),
			ExpiresAt: domain.Some("2030-01-31T12:00:01+01:00")}, "expires_at"},
		{"expires in a second", domain.APIKeyCreate{Name: domain.Some("kiosk"), Scopes: scopes("admin"),
			ExpiresAt: domain.Some("2030-01-31T12:00:01Z")}, ""},
		{"no expiry", domain.APIKeyCreate{Name: domain.Some("kiosk"), Scopes: scopes("admin"),
			ExpiresAt: domain.Optional[string]{Set: true, Null: true}}, ""},
		{"no name", domain.APIKeyCreate{Scopes: scopes("sessions")}, "name"},
		{"no scopes", domain.APIKeyCreate{Name: domain.Some("kiosk")}, "scopes"},
		{"empty scopes", domain.APIKeyCreate{Name: domain.Some("kiosk"), Scopes: scopes()}, "scopes"},
		{"unknown scope", domain.APIKeyCreate{Name: domain.Some("kiosk"), Scopes: scopes("admin", "root")}, "scopes[1]"},
		{"scope twice", domain.APIKeyCreate{Name: domain.Some("kiosk"), Scopes: scopes("sessions", "sessions")}, "scopes[1]"},
		{"not a time", domain.APIKeyCreate{Name: domain.Some("kiosk"), Scopes: scopes("admin"),
			ExpiresAt: domain.Some("2030-01-31")}, "expires_at"},
	} {
		errs := tc.in.Validate(now)
		got := ""
		if len(errs) > 0 {
			got = errs[0].Field
		}
		if got != tc.want {
			t.Errorf("%s: first field %q, want %q (%v)", tc.name, got, tc.want, errs)
		}
	}
}
