'use strict'

// Loads the package under test by its own name, which Node resolves
// through the "exports" map in package.json, the way an application that
// installed it would.
module.exports = require('keystead')
