package ports

// Fuzz tests of the gateway's parsing of a browser's input (issue 15,
// "bad input"): the sign-in form's next, and the Cookie and Set-Cookie
// headers the sign-in cookie is kept out of.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/signin"
)

// FuzzLocalPath: localPath never panics and returns "/" or next itself,
// which a browser resolves on this site: no scheme, no host.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "/session/s-1/", "//evil.example", "/\\evil.example", "/\t/evil.example", "https://evil.example",
		"javascript:alert(1)", "/a?next=//x", "", "/%2F%2Fevil", "/\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := localPath(next)
		if got != "/" && got != next {
			t.Fatalf("localPath(%q) = %q", next, got)
		}
		base, _ := url.Parse("https://gateway.example/login")
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("localPath(%q) = %q, not a URL: %v", next, got, err)
		}
		if r := base.ResolveReference(ref); r.Host != base.Host || r.Scheme != base.Scheme {
			t.Fatalf("localPath(%q) = %q leads to %s", next, got, r)
		}
	})
}

// FuzzWithoutSignIn: withoutSignIn never panics and leaves no sign-in
// cookie for the container, by Go's reading of the header or by a
// name=value split; every other cookie stays.
func FuzzWithoutSignIn(f *testing.F) {
	f.Add("a=1; " + signin.CookieName + "=secret; b=2")
	f.Add(signin.CookieName + "=secret")
	f.Add(" " + signin.CookieName + " =secret;;; x")
	f.Add("a=1;" + signin.CookieName + "=s;" + signin.CookieName + "=t")
	f.Add("\"" + signin.CookieName + "\"=x")
	f.Fuzz(func(t *testing.T, cookie string) {
		h := http.Header{}
		h.Add("Cookie", cookie)
		h.Add("Cookie", cookie)
		withoutSignIn(h)
		r := &http.Request{Header: h}
		if c, err := r.Cookie(signin.CookieName); err == nil {
			t.Fatalf("from %q, the container still gets the sign-in cookie %q", cookie, c.Value)
		}
		for _, line := range h.Values("Cookie") {
			for _, part := range strings.Split(line, ";") {
				if isSignInCookie(part) {
					t.Fatalf("from %q, the container still gets %q", cookie, part)
				}
			}
		}
		before := (&http.Request{Header: http.Header{"Cookie": {cookie}}}).Cookies()
		kept := 0
		for _, c := range before {
			if c.Name != signin.CookieName {
				kept++
			}
		}
		if after := r.Cookies(); len(after) != 2*kept {
			t.Fatalf("from %q, %d other cookies twice became %d", cookie, kept, len(after))
		}
	})
}
