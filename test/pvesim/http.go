package pvesim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

const apiPrefix = "/api2/json"

// ticketLifetime is how long a PVE ticket is valid.
const ticketLifetime = 2 * time.Hour

type handlerFunc func(c *call) (any, *apiError)

type route struct {
	method, tmpl string
	segs         []string
	h            handlerFunc
	noAuth       bool
}

// call is one request being served.
type call struct {
	r     *http.Request
	key   string            // "METHOD /template"
	p     map[string]string // query, body and path parameters
	files map[string]*multipart.FileHeader
	id    *identity
	extra map[string]any // extra top-level answer fields (e.g. "total")
}

type identity struct {
	user  string // user@realm, or user@realm!tokenid for tokens
	token bool
}

// root reports whether the caller may use root-only parameters: a ticket of
// root@pam (API tokens never may, not even root@pam's).
func (id *identity) root() bool { return !id.token && id.user == "root@pam" }

type ticket struct {
	user   string
	csrf   string
	issued time.Time
}

func (s *Server) match(method, path string) (*route, map[string]string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := range s.routes {
		rt := &s.routes[i]
		// A trailing {volume} takes the rest of the path: volume ids hold
		// a '/' (pve-storage src/PVE/API2/Storage/Status.pm mounts the
		// content methods with fragmentDelimiter '', 9.1.7).
		rest := rt.segs[len(rt.segs)-1] == "{volume}"
		if rt.method != method || len(rt.segs) > len(segs) || !rest && len(rt.segs) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for j, sg := range rt.segs {
			if rest && j == len(rt.segs)-1 {
				params["volume"] = strings.Join(segs[j:], "/")
				break
			}
			if strings.HasPrefix(sg, "{") {
				if segs[j] == "" {
					ok = false
					break
				}
				params[strings.Trim(sg, "{}")] = segs[j]
			} else if sg != segs[j] {
				ok = false
				break
			}
		}
		if ok {
			return rt, params
		}
	}
	return nil, nil
}

// ServeHTTP answers the control endpoints (control.go), else applies the
// fault switches, authenticates, validates the
// parameters against the schema and runs the handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.serveControl(w, r) {
		return
	}
	path := strings.TrimPrefix(r.URL.Path, apiPrefix)
	rt, pathParams := s.match(r.Method, path)
	key := r.Method + " " + path
	if rt != nil {
		key = r.Method + " " + rt.tmpl
	}

	s.mu.Lock()
	s.calls[key]++
	f := &s.faults
	latency := f.Latency
	drop := false
	if f.DropNext != 0 && (f.DropPath == nil || f.DropPath.MatchString(r.URL.Path)) {
		drop = true
		if f.DropNext > 0 {
			f.DropNext--
		}
	}
	failCode := 0
	if !drop && f.FailNext > 0 && (f.FailPath == nil || f.FailPath.MatchString(r.URL.Path)) {
		f.FailNext--
		failCode = f.FailCode
		if failCode == 0 {
			failCode = 503
		}
	}
	s.mu.Unlock()
	if s.opts.Logf != nil {
		s.opts.Logf("%s %s", r.Method, r.URL.RequestURI())
	}

	failAfter := failCode != 0 && f.FailAfter
	dropAfter := drop && f.DropAfter
	if drop && !dropAfter {
		hangUp(w)
		return
	}
	if latency > 0 {
		time.Sleep(latency)
	}
	if len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked" {
		// pve-http-server (AnyEvent.pm) reads bodies by Content-Length.
		s.reject(key, "chunked body")
		writeError(w, &apiError{code: 501, msg: "chunked transfer encoding not supported"})
		return
	}
	if failAfter {
		// A proxy's 5xx after the request took effect.
		s.serve(httptest.NewRecorder(), r, rt, pathParams, key)
		writeError(w, &apiError{code: failCode, msg: http.StatusText(failCode)})
		return
	}
	if failCode != 0 {
		writeError(w, &apiError{code: failCode, msg: http.StatusText(failCode)})
		return
	}
	if dropAfter {
		// Let the handler act, then hang up instead of answering.
		rec := httptest.NewRecorder()
		s.serve(rec, r, rt, pathParams, key)
		hangUp(w)
		return
	}
	s.serve(w, r, rt, pathParams, key)
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// serve authenticates, validates against the schema and runs the handler.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt *route, pathParams map[string]string, key string) {
	if !strings.HasPrefix(r.URL.Path, apiPrefix+"/") || rt == nil {
		s.reject(key, "not implemented")
		writeError(w, &apiError{code: 501, msg: fmt.Sprintf("Method '%s %s' not implemented", r.Method, r.URL.Path)})
		return
	}

	c := &call{r: r, key: key, p: map[string]string{}, extra: map[string]any{}}
	if err := c.readParams(); err != nil {
		writeError(w, &apiError{code: 400, msg: "Parameter verification failed.", errors: map[string]string{"body": err.Error()}})
		return
	}
	for k, v := range pathParams {
		c.p[k] = v
	}
	if !rt.noAuth {
		id, aerr := s.authenticate(r)
		if aerr != nil {
			s.mu.Lock()
			d := s.faults.AuthFailDelay
			s.mu.Unlock()
			time.Sleep(d)
			writeError(w, aerr)
			return
		}
		c.id = id
	}
	if sch := schemaFor(key); sch != nil {
		if errs := sch.Validate(c.p); len(errs) > 0 {
			s.reject(key, fmt.Sprint(errs))
			writeError(w, paramError(errs))
			return
		}
	}
	data, aerr := rt.h(c)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	out := map[string]any{"data": data}
	for k, v := range c.extra {
		out[k] = v
	}
	writeJSON(w, out)
}

// readParams collects query, form, multipart or JSON body parameters.
func (c *call) readParams() error {
	r := c.r
	for k, v := range r.URL.Query() {
		c.p[k] = v[0]
	}
	if r.Method == http.MethodGet || r.Body == nil {
		return nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(64 << 20); err != nil {
			return err
		}
		for k, v := range r.MultipartForm.Value {
			c.p[k] = v[0]
		}
		c.files = map[string]*multipart.FileHeader{}
		for k, v := range r.MultipartForm.File {
			c.files[k] = v[0]
			c.p[k] = v[0].Filename // validated like a plain parameter
		}
	case "application/json":
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return fmt.Errorf("malformed JSON body: %v", err)
		}
		for k, v := range m {
			switch x := v.(type) {
			case string:
				c.p[k] = x
			case bool:
				c.p[k] = map[bool]string{true: "1", false: "0"}[x]
			case float64:
				c.p[k] = strconv.FormatFloat(x, 'f', -1, 64)
			case nil:
			default:
				b, _ := json.Marshal(x)
				c.p[k] = string(b)
			}
		}
	default:
		if err := r.ParseForm(); err != nil {
			return err
		}
		for k, v := range r.PostForm {
			c.p[k] = v[0]
		}
	}
	return nil
}

// authenticate checks an API token or a ticket cookie (+ CSRF header on
// write methods).
func (s *Server) authenticate(r *http.Request) (*identity, *apiError) {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "PVEAPIToken=") {
		id, secret, ok := strings.Cut(strings.TrimPrefix(h, "PVEAPIToken="), "=")
		if !ok || !strings.Contains(id, "!") {
			return nil, &apiError{code: 401, msg: "invalid API token format"}
		}
		want, known := s.opts.Tokens[id]
		if !known || want != secret {
			return nil, &apiError{code: 401, msg: "invalid token value!"}
		}
		return &identity{user: id, token: true}, nil
	}
	ck, err := r.Cookie("PVEAuthCookie")
	if err != nil || ck.Value == "" {
		return nil, &apiError{code: 401, msg: "No ticket"}
	}
	s.mu.Lock()
	t := s.tickets[ck.Value]
	expired := t != nil && s.now().Sub(t.issued) > ticketLifetime
	s.mu.Unlock()
	if t == nil || expired {
		return nil, &apiError{code: 401, msg: "permission denied - invalid PVE ticket"}
	}
	if r.Method != http.MethodGet && r.Header.Get("CSRFPreventionToken") != t.csrf {
		return nil, &apiError{code: 401, msg: "Permission denied - invalid csrf token"}
	}
	return &identity{user: t.user}, nil
}

func randToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

// POST /access/ticket
func (s *Server) accessTicket(c *call) (any, *apiError) {
	user := c.p["username"]
	if realm := c.p["realm"]; realm != "" && !strings.Contains(user, "@") {
		user += "@" + realm
	}
	s.mu.Lock()
	now := s.now()
	ok := false
	if pw, known := s.opts.Users[user]; known && pw == c.p["password"] {
		ok = true
	} else if t := s.tickets[c.p["password"]]; t != nil && t.user == user && now.Sub(t.issued) <= ticketLifetime {
		ok = true // ticket renewal: the old ticket as password
	}
	delay := s.faults.AuthFailDelay
	if !ok {
		s.mu.Unlock()
		time.Sleep(delay)
		return nil, &apiError{code: 401, msg: "authentication failure"}
	}
	tk := fmt.Sprintf("PVE:%s:%08X::%s", user, now.Unix(), randToken(48))
	csrf := fmt.Sprintf("%08X:%s", now.Unix(), randToken(32))
	s.tickets[tk] = &ticket{user: user, csrf: csrf, issued: now}
	s.mu.Unlock()
	return map[string]any{
		"username":            user,
		"ticket":              tk,
		"CSRFPreventionToken": csrf,
		"cap":                 map[string]any{},
	}, nil
}

// reject records a request that broke the API's rules, for Rejected.
func (s *Server) reject(key, why string) {
	s.mu.Lock()
	s.rejected = append(s.rejected, key+": "+why)
	s.mu.Unlock()
}

// Rejected lists the requests refused for an unknown method or parameters
// that fail the schema. A client under test should cause none.
func (s *Server) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rejected...)
}
