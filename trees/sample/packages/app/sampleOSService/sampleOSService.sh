#!/bin/sh
# sampleOSService: answers on a port in a real derivative; here it says hello.
echo "sampleOSService listening on ${SAMPLE_PORT:-8080}"
