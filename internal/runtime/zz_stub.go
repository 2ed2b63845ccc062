package runtime

func (r *Runtime) releaseImageBundle(id, bundle string) {}
