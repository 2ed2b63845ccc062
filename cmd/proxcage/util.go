package main

import (
	"errors"

	"github.com/proxcage/proxcage/internal/errdefs"
)

func errdefsIsNotFound(err error) bool { return errors.Is(err, errdefs.ErrNotFound) }
