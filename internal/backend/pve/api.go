package pve

// A thin typed client for the PVE REST API, used by apiTransport.
//
// Why not github.com/luthermonson/go-proxmox: at v0.8.2 its Task.Wait
// returns nil for a failed task, Container.Config returns a nil task,
// NewTask panics on a malformed UPID, Task.Ping replaces the task with the
// reply, Wait ignores the context while sleeping, and an HTTP 500 keeps only
// the status line, dropping the body whose "errors" map names the bad
// parameters. Wrapping all of that took more code than the few calls
// proxcage needs, typed here.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/proxcage/proxcage/internal/config"
	"github.com/proxcage/proxcage/internal/errdefs"
)

// TokenSecretEnv may hold the API token secret instead of a file.
const TokenSecretEnv = "PROXCAGE_PVE_TOKEN_SECRET"

// apiClient talks to https://HOST:8006/api2/json.
type apiClient struct {
	base     string
	urlNote  string // how [pve] url was normalised, for doctor ("" if not)
	http     *http.Client
	insecure bool
	log      *slog.Logger

	tokenHeader string // "PVEAPIToken=user@realm!id=secret"; never logged

	timeout time.Duration // per request, and per task wait ([pve] timeout)

	user, password string // ticket login
	ticket, csrf   string
	ticketAt       time.Time
	now            func() time.Time
}

// newAPIClient checks the TLS and auth settings and builds the client.
// Verification is always on: a pinned SHA-256 fingerprint or a CA file;
// `insecure = true` only when asked, with a warning on every call.
func newAPIClient(cfg config.PVE, log *slog.Logger) (*apiClient, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "[pve] url %q: want https://HOST:8006", cfg.URL)
	}
	// The API's own path is proxcage's to add: a url copied from the API
	// docs (https://HOST:8006/api2/json) would double it. Any other path
	// stays (a reverse proxy may serve PVE below one).
	var urlNote string
	if p, ok := strings.CutSuffix(strings.TrimRight(u.Path, "/"), "/api2/json"); ok {
		u.Path, u.RawPath = p, ""
		urlNote = fmt.Sprintf("[pve] url %q ends in /api2/json, which proxcage adds itself: used %s; drop the path from the config", cfg.URL, u.String())
	}
	// Two logins at once would leave which one is used to the code's order.
	if cfg.TokenID != "" && cfg.User != "" {
		return nil, &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
			Msg: fmt.Sprintf("[pve] token_id %q and user %q are both set: they are two ways to log in, choose one", cfg.TokenID, cfg.User),
			Hint: "remove user (and password_file) to log in with the API token, or remove token_id (and token_secret_file) " +
				"for a ticket login as the user (needed for root@pam-only options)"}
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case cfg.Fingerprint != "":
		want, err := parseFingerprint(cfg.Fingerprint)
		if err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "[pve] fingerprint")
		}
		// Pinning replaces chain verification: PVE nodes usually carry a
		// self-signed certificate, and the pin is the trust.
		tlsCfg.InsecureSkipVerify = true
		tlsCfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("no server certificate")
			}
			if got := sha256.Sum256(raw[0]); got != want {
				return fmt.Errorf("server certificate fingerprint %s does not match [pve] fingerprint", formatFingerprint(got))
			}
			return nil
		}
	case cfg.CAFile != "":
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "[pve] ca_file")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "[pve] ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	case cfg.Insecure:
		tlsCfg.InsecureSkipVerify = true
	default:
		return nil, &errdefs.Error{Cat: errdefs.ErrInvalidArgument,
			Msg:  fmt.Sprintf("[pve] url %q is set but TLS cannot be verified: none of fingerprint, ca_file or insecure is set", cfg.URL),
			Hint: unverifiedHint(u.Host)}
	}
	timeout, err := time.ParseDuration(cfg.Timeout)
	if err != nil || timeout <= 0 {
		timeout = 2 * time.Minute
	}
	c := &apiClient{
		timeout:  timeout,
		base:     strings.TrimSuffix(u.String(), "/") + "/api2/json",
		urlNote:  urlNote,
		insecure: cfg.Insecure && cfg.Fingerprint == "" && cfg.CAFile == "",
		log:      log,
		now:      time.Now,
		http: &http.Client{Transport: &http.Transport{
			TLSClientConfig:     tlsCfg,
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
		}},
	}
	switch {
	case cfg.TokenID != "":
		secret, err := readSecret(cfg.TokenSecretFile, TokenSecretEnv)
		if err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "[pve] token secret")
		}
		c.tokenHeader = "PVEAPIToken=" + cfg.TokenID + "=" + secret
	case cfg.User != "":
		pw, err := readSecret(cfg.PasswordFile, "")
		if err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err, "[pve] password_file")
		}
		c.user, c.password = cfg.User, pw
	default:
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "[pve] set token_id (+ token_secret_file) or user (+ password_file)")
	}
	return c, nil
}

// readSecret reads a secret from a file that only its owner may read, or
// from env when no file is named. The secret is never part of an error.
func readSecret(path, env string) (string, error) {
	if path == "" {
		if env != "" {
			if v := os.Getenv(env); v != "" {
				// Child processes (pct, lxc-attach, hooks) must not inherit it.
				if err := os.Unsetenv(env); err != nil {
					return "", fmt.Errorf("unset $%s: %w", env, err)
				}
				return v, nil
			}
			return "", fmt.Errorf("no secret file configured and $%s is empty", env)
		}
		return "", errors.New("no secret file configured")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is readable by group or others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// unverifiedHint offers the ways to trust the server, with the SHA-256
// fingerprint of the certificate it shows now (read without trusting it,
// so the operator compares it with `pvenode cert info` before pinning).
func unverifiedHint(host string) string {
	fp, err := serverFingerprint(host)
	if err != nil {
		return fmt.Sprintf("set [pve] fingerprint to the SHA-256 fingerprint `pvenode cert info` shows on the node (its certificate could not be read from here: %v), or ca_file to the CA bundle that signed it, or insecure = true (no verification)", err)
	}
	return fmt.Sprintf("the server's certificate has SHA-256 fingerprint %s: if `pvenode cert info` on the node shows the same, set [pve] fingerprint = %q; or set ca_file to the CA bundle that signed it, or insecure = true (no verification)", fp, fp)
}

// serverFingerprint connects to host and returns the SHA-256 fingerprint
// of the certificate it presents, formatted as pvenode prints it.
func serverFingerprint(host string) (string, error) {
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "443")
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", host, &tls.Config{InsecureSkipVerify: true}) // #nosec: read, not trusted
	if err != nil {
		return "", err
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", errors.New("no certificate presented")
	}
	return formatFingerprint(sha256.Sum256(certs[0].Raw)), nil
}

func parseFingerprint(s string) ([32]byte, error) {
	var out [32]byte
	hexs := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), ":", "")
	if len(hexs) != 64 {
		return out, fmt.Errorf("%q is not a SHA-256 fingerprint (32 hex bytes, AB:CD:...)", s)
	}
	for i := range out {
		var b byte
		if _, err := fmt.Sscanf(hexs[2*i:2*i+2], "%02x", &b); err != nil {
			return out, fmt.Errorf("%q is not a SHA-256 fingerprint", s)
		}
		out[i] = b
	}
	return out, nil
}

func formatFingerprint(sum [32]byte) string {
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// apiError is a failed API call: the status line text, the per-parameter
// errors, and the request that failed (without secrets).
type apiError struct {
	Status  int
	Message string
	Params  map[string]string
}

func (e *apiError) Error() string { return e.text() }

// text is what the error table classifies: the status text plus one
// "param: message" line per parameter, as pct prints them.
func (e *apiError) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Message)
	keys := make([]string, 0, len(e.Params))
	for k := range e.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\n%s: %s", k, e.Params[k])
	}
	return b.String()
}

// refusedBeforeActing: PVE answered 500 with a text that says it did
// nothing (a config lock it could not take, a CT locked by another task,
// no worker to fork): repeating the request is safe even for a write.
func (e *apiError) refusedBeforeActing() bool {
	return e.Status == http.StatusInternalServerError && classify("", 0, 0, e.Message).Retry
}

// gatewayError: pveproxy (or a proxy in front) answered for pvedaemon.
// For a read that is transient; for a write, PVE may have acted.
func (e *apiError) gatewayError() bool {
	switch e.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// call performs one API request. params go in the query for GET/DELETE
// and form-encoded in the body otherwise; out receives "data".
//
// Retries, with jittered backoff: a GET on 502/503/504, on a 500 that
// refused before acting, and on a dropped connection; a write (POST, PUT,
// DELETE) only on a 500 that refused before acting. A write's 5xx from a
// gateway or a dropped connection may come after PVE acted: the caller
// decides what to check (apiTransport.create, Backend.destroy). 4xx and
// our own timeouts never repeat.
func (c *apiClient) call(ctx context.Context, step string, vmid int, method, path string, params url.Values, out any) error {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, method, path, params, out)
		if err == nil {
			return nil
		}
		var ae *apiError
		isAPI := errors.As(err, &ae)
		dropped := !isAPI && ctx.Err() == nil && !tlsFailure(err) && !errors.Is(err, context.DeadlineExceeded)
		var retry bool
		if method == http.MethodGet {
			retry = isAPI && (ae.gatewayError() || ae.refusedBeforeActing()) || dropped
		} else {
			retry = isAPI && ae.refusedBeforeActing()
		}
		if !retry || attempt >= 5 {
			return c.wrap(step, vmid, err)
		}
		wait := delay + time.Duration(rand.Int64N(int64(delay)))
		c.log.Debug("retrying PVE API call", "step", step, "attempt", attempt, "wait", wait, "reason", err.Error())
		select {
		case <-ctx.Done():
			return c.wrap(step, vmid, err)
		case <-time.After(wait):
		}
		delay *= 2
	}
}

// uncertain reports whether a classified failure of a write leaves open
// whether PVE acted (a gateway's 5xx, a dropped connection, a timeout):
// every such failure is in category unavailable.
func uncertain(err error) bool {
	return errdefs.Category(err) == errdefs.ErrUnavailable
}

// noAnswer reports whether a failed call got no answer from PVE itself: a
// gateway's 5xx, a dropped connection, a timeout. A write may then have
// happened or not; a 500 from pvedaemon (even a transient one) says what
// it did.
func noAnswer(err error) bool {
	var te *toolError
	return errors.As(err, &te) && te.noAnswer
}

// wrap classifies a failed call with the same table as pct's messages.
func (c *apiClient) wrap(step string, vmid int, err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		te := classify(step, vmid, -1, ae.text())
		if ae.gatewayError() {
			te.Cat, te.Retry, te.noAnswer = errdefs.ErrUnavailable, true, true
			te.Hint = "PVE's proxy answered for pvedaemon (restarting or overloaded?); retry"
		}
		if ae.Status == http.StatusUnauthorized {
			te.Cat = errdefs.ErrPermissionDenied
			te.Hint = "check [pve] token_id and its secret (or user and password_file)"
		}
		if ae.Status == http.StatusForbidden && te.Hint == "" {
			te.Cat = errdefs.ErrPermissionDenied
			te.Hint = "the user or API token lacks a privilege for this call: grant it with `pveum acl modify`"
		}
		return te.asError()
	}
	// Drop Go's `Get "https://...":` wrapper: the step names the call.
	text := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		text = ue.Err.Error()
	}
	te := &toolError{Step: step, VMID: vmid, Code: -1, Stderr: text, Cat: errdefs.ErrUnavailable, noAnswer: true,
		Hint: "the PVE API at " + c.host() + " did not answer; check [pve] url and the network"}
	if tlsFailure(err) {
		te.Cat, te.Hint, te.noAnswer = errdefs.ErrPermissionDenied, "TLS verification failed: check [pve] fingerprint or ca_file", false
	}
	return te.asError()
}

// host is the API's host:port, for messages.
func (c *apiClient) host() string {
	if u, err := url.Parse(c.base); err == nil {
		return u.Host
	}
	return c.base
}

func (c *apiClient) once(ctx context.Context, method, path string, params url.Values, out any) error {
	if c.insecure {
		c.log.Warn("PVE API call without TLS verification ([pve] insecure = true)", "path", path)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.login(ctx); err != nil {
		return err
	}
	u := c.base + path
	var body io.Reader
	if method == http.MethodGet || method == http.MethodDelete {
		if len(params) > 0 {
			u += "?" + params.Encode()
		}
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return c.do(req, out)
}

// do sends an authorized request and decodes PVE's {"data": ...} answer.
func (c *apiClient) do(req *http.Request, out any) error {
	path := req.URL.Path
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	var env struct {
		Data   json.RawMessage   `json:"data"`
		Errors map[string]string `json:"errors"`
	}
	_ = json.Unmarshal(data, &env)
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(strings.TrimPrefix(resp.Status, fmt.Sprint(resp.StatusCode)))
		return &apiError{Status: resp.StatusCode, Message: msg, Params: env.Errors}
	}
	if out != nil && len(env.Data) > 0 {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return fmt.Errorf("decode %s answer: %w", path, err)
		}
	}
	return nil
}

func (c *apiClient) authorize(req *http.Request) {
	if c.tokenHeader != "" {
		req.Header.Set("Authorization", c.tokenHeader)
		return
	}
	req.AddCookie(&http.Cookie{Name: "PVEAuthCookie", Value: c.ticket})
	if req.Method != http.MethodGet {
		req.Header.Set("CSRFPreventionToken", c.csrf)
	}
}

// identity is who the node's task list names as the caller: the token id
// (USER@REALM!ID) or the ticket's user.
func (c *apiClient) identity() string {
	if id, ok := strings.CutPrefix(c.tokenHeader, "PVEAPIToken="); ok {
		// Token ids hold no '=' (pve-tokenid): the secret follows the first.
		id, _, _ = strings.Cut(id, "=")
		return id
	}
	return c.user
}

// ticketLife is renewed before PVE's 2 h expiry.
const ticketLife = 90 * time.Minute

// login gets (or renews) a ticket for user/password auth.
func (c *apiClient) login(ctx context.Context) error {
	if c.tokenHeader != "" || c.ticket != "" && c.now().Sub(c.ticketAt) < ticketLife {
		return nil
	}
	form := url.Values{"username": {c.user}, "password": {c.password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/access/ticket", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &apiError{Status: resp.StatusCode, Message: "login as " + c.user + " failed"}
	}
	var env struct {
		Data struct {
			Ticket string `json:"ticket"`
			CSRF   string `json:"CSRFPreventionToken"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || env.Data.Ticket == "" {
		return fmt.Errorf("login as %s: no ticket in the answer", c.user)
	}
	c.ticket, c.csrf, c.ticketAt = env.Data.Ticket, env.Data.CSRF, c.now()
	return nil
}

// upid is a parsed task id: UPID:node:pid:pstart:starttime:type:id:user:
type upid struct {
	raw, node, typ, id string
}

func parseUPID(s string) (upid, error) {
	f := strings.Split(s, ":")
	if len(f) < 9 || f[0] != "UPID" || f[1] == "" {
		return upid{}, fmt.Errorf("malformed task id %q", s)
	}
	return upid{raw: s, node: f[1], typ: f[5], id: f[6]}, nil
}

// waitTask polls a task until it stops. Success is "OK" or "WARNINGS: n";
// anything else fails with the exit status and the tail of the task log.
//
// With grace > 0 it waits at most that long and returns nil if the task is
// still running then (an action that may take long, such as a shutdown).
func (c *apiClient) waitTask(ctx context.Context, step string, vmid int, taskID string, grace time.Duration) error {
	u, err := parseUPID(taskID)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, err, "%s", step)
	}
	path := "/nodes/" + url.PathEscape(u.node) + "/tasks/" + url.PathEscape(u.raw)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	delay := 50 * time.Millisecond
	var deadline <-chan time.Time
	if grace > 0 {
		deadline = time.After(grace)
	}
	for {
		var st struct {
			Status     string `json:"status"`
			ExitStatus string `json:"exitstatus"`
		}
		if err := c.call(ctx, step+" (task status)", vmid, http.MethodGet, path+"/status", nil, &st); err != nil {
			return err
		}
		if st.Status == "stopped" {
			if st.ExitStatus == "OK" || strings.HasPrefix(st.ExitStatus, "WARNINGS:") {
				return nil
			}
			text := st.ExitStatus
			if tail := c.taskLogTail(ctx, path); tail != "" {
				text += "\n" + tail
			}
			return classify(step, vmid, -1, text).asError()
		}
		select {
		case <-ctx.Done():
			return &taskRunning{&errdefs.Error{Cat: errdefs.ErrUnavailable,
				Msg:  fmt.Sprintf("%s: task %s still running after %v", step, u.raw, c.timeout),
				Hint: "the node is slow or a lock is held; raise [pve] timeout, or look at the task in the PVE UI"}}
		case <-deadline:
			c.log.Debug("task still running after its grace time", "step", step, "task", u.raw)
			return nil
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

// taskRunning: waitTask gave up on a task that still runs.
type taskRunning struct{ err error }

func (e *taskRunning) Error() string { return e.err.Error() }
func (e *taskRunning) Unwrap() error { return e.err }

// taskLogTail returns the last lines of a task's log ("" if unreadable).
func (c *apiClient) taskLogTail(ctx context.Context, path string) string {
	var lines []struct {
		N int    `json:"n"`
		T string `json:"t"`
	}
	if err := c.once(ctx, http.MethodGet, path+"/log", url.Values{"start": {"0"}, "limit": {"500"}}, &lines); err != nil {
		return ""
	}
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if l.T != "" && l.T != "TASK OK" {
			out = append(out, l.T)
		}
	}
	return strings.Join(out, "\n")
}

// tlsFailure: a certificate that does not verify will not verify on retry.
func tlsFailure(err error) bool {
	var cv *tls.CertificateVerificationError
	return errors.As(err, &cv) || strings.Contains(err.Error(), "fingerprint") || strings.Contains(err.Error(), "certificate")
}

// upload posts a file as multipart/form-data (fields first, the file part
// last, as PVE's own web UI sends it), streamed from disk. An upload is
// repeated on transient failures, a dropped connection included: the file
// name is the template's digest, so a second upload writes the same file.
func (c *apiClient) upload(ctx context.Context, step, path string, fields url.Values, fileField, file string, out any) error {
	delay := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := c.uploadOnce(ctx, path, fields, fileField, file, out)
		if err == nil {
			return nil
		}
		// Repeating an upload is safe: the file name is the template's
		// digest, so a second upload writes the same file.
		var ae *apiError
		var le *localError
		retry := errors.As(err, &ae) && (ae.gatewayError() || ae.refusedBeforeActing()) ||
			ae == nil && !errors.As(err, &le) && ctx.Err() == nil && !tlsFailure(err)
		if !retry || attempt >= 3 {
			return c.wrap(step, 0, err)
		}
		c.log.Debug("retrying PVE upload", "attempt", attempt, "reason", err.Error())
		select {
		case <-ctx.Done():
			return c.wrap(step, 0, err)
		case <-time.After(delay + time.Duration(rand.Int64N(int64(delay)))):
		}
		delay *= 2
	}
}

func (c *apiClient) uploadOnce(ctx context.Context, path string, fields url.Values, fileField, file string, out any) error {
	// [pve] timeout bounds an upload too (raise it for big templates on
	// slow links): a stalled connection must not hang a create.
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.login(ctx); err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return &localError{err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &localError{err}
	}
	// PVE's HTTP server does not take chunked bodies: the multipart head
	// and tail are built first so the request carries a Content-Length.
	var head, tail bytes.Buffer
	mw := multipart.NewWriter(&head)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := mw.WriteField(k, fields.Get(k)); err != nil {
			return &localError{err}
		}
	}
	if _, err := mw.CreateFormFile(fileField, filepath.Base(file)); err != nil {
		return &localError{err}
	}
	ctype := mw.FormDataContentType()
	// Close of a writer with no part writes just "\r\n--BOUNDARY--\r\n".
	tw := multipart.NewWriter(&tail)
	_ = tw.SetBoundary(mw.Boundary())
	_ = tw.Close()
	body := io.MultiReader(bytes.NewReader(head.Bytes()), f, bytes.NewReader(tail.Bytes()))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, body)
	if err != nil {
		return &localError{err}
	}
	req.ContentLength = int64(head.Len()) + fi.Size() + int64(tail.Len())
	req.Header.Set("Content-Type", ctype)
	return c.do(req, out)
}

// localError is a failure on this host (reading the file to upload): not
// a network problem, so never retried.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }
