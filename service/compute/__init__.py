"""service/compute"""
