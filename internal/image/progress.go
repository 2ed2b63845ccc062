package image

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progress shows a pull: bars on a terminal, else log lines.
type progress struct {
	bars *mpb.Progress // nil: no terminal, log instead
	log  *slog.Logger
}

func newProgress(ctx context.Context, w io.Writer, quiet bool, log *slog.Logger) *progress {
	f, ok := w.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return &progress{log: log}
	}
	return &progress{bars: mpb.NewWithContext(ctx, mpb.WithOutput(f), mpb.WithWidth(40)), log: log}
}

func short(h v1.Hash) string {
	if len(h.Hex) < 12 {
		return h.Hex
	}
	return h.Hex[:12]
}

// exists marks a layer the store already has.
func (p *progress) exists(h v1.Hash, size int64) {
	if p.bars == nil {
		p.log.Debug("layer already stored", "digest", h.String())
		return
	}
	b := p.bars.AddBar(size, mpb.PrependDecorators(decor.Name(short(h), decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Name("exists")))
	b.SetCurrent(size)
	b.SetTotal(-1, true) // complete now: a full bar
}

// layer tracks one layer download: wrap its stream with reader, then call done.
type layer struct {
	p    *progress
	h    v1.Hash
	size int64
	bar  *mpb.Bar
}

func (p *progress) fetch(h v1.Hash, size int64) *layer {
	l := &layer{p: p, h: h, size: size}
	if p.bars != nil {
		l.bar = p.bars.AddBar(size,
			mpb.PrependDecorators(decor.Name(short(h), decor.WCSyncSpaceR)),
			mpb.AppendDecorators(
				decor.OnAbort(decor.CountersKibiByte("% .1f / % .1f"), "failed"),
				decor.OnAbort(decor.AverageSpeed(decor.SizeB1024(0), " % .1f"), "")))
	}
	return l
}

func (l *layer) reader(r io.Reader) io.Reader {
	if l.bar == nil {
		return r
	}
	// Queued downloads start late: measure the rate from now.
	_ = l.bar.DecoratorAverageAdjust(time.Now())
	if pr, err := l.bar.ProxyReader(r); err == nil {
		return pr
	}
	return r
}

func (l *layer) done(err error) {
	switch {
	case l.bar != nil && err != nil:
		l.bar.Abort(false)
	case l.bar != nil:
		l.bar.SetTotal(-1, true)
	case err == nil:
		l.p.log.Info("fetched layer", "digest", l.h.String(), "size", l.size)
	}
}

// image reports the pulled image after the bars are finished.
func (p *progress) image(ref string, d v1.Hash) {
	if p.bars != nil {
		p.bars.Wait()
		p.log.Debug("pulled image", "ref", ref, "digest", d.String())
		return
	}
	p.log.Info("pulled image", "ref", ref, "digest", d.String())
}

// stop ends the bars after a failure.
func (p *progress) stop() {
	if p.bars != nil {
		p.bars.Shutdown()
	}
}
