# Loads a Vagrantfile against a stand-in for Vagrant's configuration API and prints, as JSON,
# what it configured: box, synced folders, per-provider settings and provisioners. Used by
# tests/test_vm_files.py where Vagrant itself is not installed. Usage: ruby vagrant_stub.rb FILE
require "json"

class Recorder
  attr_reader :calls

  def initialize
    @calls = {}
  end

  def method_missing(name, *args, **kwargs, &block)
    key = name.to_s
    if key.end_with?("=")
      @calls[key.chomp("=")] = args.first
      return args.first
    end
    if args.empty? && kwargs.empty? && block.nil?   # a namespace such as config.vm
      @calls[key] ||= Recorder.new
      return @calls[key]
    end
    child = Recorder.new
    (@calls[key] ||= []) << { "args" => args, "kwargs" => kwargs.transform_keys(&:to_s), "block" => child }
    block&.call(child)
    child
  end

  def respond_to_missing?(*)
    true
  end

  def to_json(*args)
    @calls.to_json(*args)
  end
end

module Vagrant
  def self.configure(version)
    raise "unexpected configuration version #{version}" unless version == "2"
    config = Recorder.new
    yield config
    puts JSON.generate(config.calls)
  end
end

load ARGV.fetch(0)
